from django.apps import AppConfig


class CatalogConfig(AppConfig):
    verbose_name = "Catalog"
    name = "playground.catalog"
    label = "catalog"
