from django.apps import AppConfig


class TeamsConfig(AppConfig):
    """Teams: workspaces shared by their members, in roles."""

    name = "playground.teams"
    label = "teams"
