from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "playground.keys"
    label = "keys"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from playground.teams.models import Membership

        from .models import ApiKey
        from .services import key_or_account_changed

        for signal in (post_save, post_delete):  # a key cached by this process is stale at once
            for sender in (ApiKey, get_user_model(), Membership):
                signal.connect(
                    key_or_account_changed, sender=sender, dispatch_uid=f"forget-keys-{sender.__name__}"
                )
