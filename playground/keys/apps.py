from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "playground.keys"
    label = "keys"
