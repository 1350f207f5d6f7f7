from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "playground.keys"
    label = "keys"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from .models import ApiKey
        from .services import forget_recent_keys

        for signal in (post_save, post_delete):  # a key cached by this process is stale at once
            for sender in (ApiKey, get_user_model()):
                signal.connect(
                    forget_recent_keys, sender=sender, dispatch_uid=f"forget-keys-{sender.__name__}"
                )
