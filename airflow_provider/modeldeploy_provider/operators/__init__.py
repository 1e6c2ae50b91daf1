"""Part of the modeldeploy Airflow provider."""
