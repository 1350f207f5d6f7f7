from django.db import models


class CatalogEntry(models.Model):
    """A model on offer: its identity, input schema, pricing rule and engine.

    The JSON files in `playground/catalog/entries/` are the source; `import_model` and
    `load_catalog` copy them here. `roles` maps generic roles (prompt, count, aspect, resolution,
    duration, reference_images, reference_video, reference_audio, mask, seed) to this model's field
    names, so the cost function and the engines never special-case a model.
    """

    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    output_key = models.CharField(max_length=20)
    input_schema = models.JSONField()
    roles = models.JSONField(default=dict)
    pricing = models.JSONField(default=dict)
    engine = models.CharField(max_length=20, blank=True, help_text="Empty: PLAYGROUND_ENGINE.")
    example_input = models.JSONField(default=dict, blank=True)
    example_cost_estimate = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    provenance = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "title"]
        verbose_name_plural = "catalog entries"

    def __str__(self) -> str:
        return self.slug

    def role_field(self, role: str) -> str | None:
        """The input field playing `role` for this model, or None."""
        return self.roles.get(role)
