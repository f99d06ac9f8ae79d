"""The load engine behind ``manage.py loadtest``: plain, importable and usable without the command."""
