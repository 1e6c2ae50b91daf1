"""The `modeldeploy` console script.

Start-up is kept cheap: this package imports only the standard library at module level;
the engine, the flavor and any heavy library load inside the command that needs them.
"""
