from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "playground.generations"
    label = "generations"
