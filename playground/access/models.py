# No tables yet; the module makes Django send this app post_migrate (see apps.py).
