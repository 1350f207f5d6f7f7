"""A model's input JSON Schema -> a Django form, and the cleaned form -> the input dict.

The form is generated from the schema and its `x-playground` hints (textarea rows, file-upload
with accept / multiple / uploadKind, advanced). After the form cleans, the assembled input goes
through the same checks as the API (one rule, one place: the web passes the API's `check_input`;
without one, the schema and cross-field rules of `validate_input`) and each error is put beside the
field it names. Uploads stay files (`UploadedMedia`) until the task is submitted, which stores
them. Unknown hints fall back to the type's plain widget; unknown keywords are ignored.

Form field names: a property `size` is the field `size`; a file-upload property also has
`size__file`; an array of objects has `name__<row>__<sub>` fields.
"""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import ProhibitNullCharactersValidator

from playground.engines.media import UploadedMedia, placeholders

from .fields import Field, fields_of
from .models import CatalogEntry
from .pricing import priced_fields
from .text import MAX_JSON_DEPTH, max_text_chars, nesting_depth, text_problem
from .validation import FieldError, schema_errors, validate_input

DEFAULT_OBJECT_ROWS = 5
SEED_MAX = 4294967295
TOO_DEEP = f"This nests lists and objects more than {MAX_JSON_DEPTH} levels deep."

# A field of the form is a field of the model as `catalog.fields` describes it.
FieldSpec = Field


def file_field(spec: Field) -> str:
    """The form field for a media field's files (beside `spec.name`, its pasted URLs)."""
    return f"{spec.name}__file"


def row_field(spec: Field, row: int, sub: str) -> str:
    """The form field for `sub` in row `row` of an object list."""
    return f"{spec.name}__{row}__{sub}"


def object_rows(spec: Field) -> int:
    """How many rows the form offers an object list."""
    return int(spec.max_items or DEFAULT_OBJECT_ROWS)


def field_specs(entry: CatalogEntry) -> list[Field]:
    """The model's fields in display order: the prompt first, then schema order; advanced last."""
    prompt = entry.roles.get("prompt")
    return sorted(fields_of(entry), key=lambda s: (s.advanced, s.name != prompt))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


def _number_attrs(spec: Field, integer: bool) -> dict:
    attrs: dict[str, Any] = {}
    if spec.multiple_of is not None:
        attrs["step"] = spec.multiple_of
    elif not integer:
        attrs["step"] = "any"
    return attrs


def check_text(value: Any) -> None:
    """The form's side of the one rule for text (`text.text_problem`): the API's words, beside
    the field."""
    if isinstance(value, str) and (problem := text_problem(value)):
        raise forms.ValidationError(problem, code="invalid_text")


def _text_field(**kwargs) -> forms.CharField:
    """A CharField held to the rule for text, in place of Django's own NUL check (which says less)."""
    form_field = forms.CharField(**kwargs)
    kept = [v for v in form_field.validators if not isinstance(v, ProhibitNullCharactersValidator)]
    form_field.validators = [*kept, check_text]
    return form_field


def _form_field(spec: Field, *, force_optional: bool = False) -> forms.Field:
    required = spec.required and not force_optional
    common = {"label": spec.label, "help_text": spec.help_text, "required": required}
    default = spec.default
    if default is not None:
        common["initial"] = default
    if spec.kind in ("text", "textarea"):
        attrs = {"rows": int(spec.hints.get("rows") or 4)} if spec.kind == "textarea" else {}
        widget = forms.Textarea(attrs=attrs) if spec.kind == "textarea" else forms.TextInput()
        form_field = _text_field(
            min_length=spec.min_length,
            max_length=max_text_chars(spec.schema),
            widget=widget,
            strip=False,
            **common,
        )
        if spec.kind == "textarea":
            # A browser's maxlength cuts a pasted prompt short without a word; the server's error
            # (and app.js's count as the limit nears) says what is too long instead.
            form_field.widget.attrs["data-maxlength"] = form_field.widget.attrs.pop("maxlength")
        return form_field
    if spec.kind == "choice":
        choices = [(str(v), str(v)) for v in spec.enum or ()]
        if not required and default is None:
            choices.insert(0, ("", "—"))
        coerce: Callable[[str], Any] = str
        if spec.type == "integer":
            coerce = int
        elif spec.type == "number":
            coerce = float
        return forms.TypedChoiceField(choices=choices, coerce=coerce, empty_value=None, **common)
    if spec.kind == "integer":
        return forms.IntegerField(
            min_value=spec.minimum,
            max_value=spec.maximum,
            widget=forms.NumberInput(attrs=_number_attrs(spec, True)),
            **common,
        )
    if spec.kind == "number":
        return forms.FloatField(
            min_value=spec.minimum,
            max_value=spec.maximum,
            widget=forms.NumberInput(attrs=_number_attrs(spec, False)),
            **common,
        )
    if spec.kind == "boolean":
        return forms.BooleanField(
            required=False,
            label=spec.label,
            help_text=spec.help_text,
            initial=bool(default),
            widget=forms.CheckboxInput(attrs={"role": "switch"}),
        )
    if spec.kind == "media":
        return _text_field(
            required=False,
            label=spec.label,
            help_text=spec.help_text,
            widget=forms.TextInput(attrs={"placeholder": "https://… or data:…", "inputmode": "url"}),
        )
    if spec.kind in ("media_list", "string_list"):
        placeholder = "One URL per line" if spec.kind == "media_list" else "One per line"
        return _text_field(
            required=required and spec.kind == "string_list",
            label=spec.label,
            help_text=spec.help_text,
            widget=forms.Textarea(attrs={"rows": 2, "placeholder": placeholder}),
        )
    return _text_field(  # json: anything the schema describes that has no better widget
        required=required,
        label=spec.label,
        help_text=spec.help_text or "JSON value",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )


def _file_field(spec: Field) -> forms.Field:
    attrs = {"accept": spec.accept} if spec.accept else {}
    if spec.kind == "media_list" and spec.multiple:
        return MultipleFileField(required=False, label=spec.label, widget=MultipleFileInput(attrs=attrs))
    return forms.FileField(required=False, label=spec.label, widget=forms.ClearableFileInput(attrs=attrs))


def uploaded(upload: UploadedFile) -> UploadedMedia:
    """A browser upload in the input: checked like a data URI on its bytes (read from the file
    Django spooled it to, never copied into memory whole), then stored as an input file when the
    task is submitted, which references it by URL."""
    limit = settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES
    if upload.size and upload.size > limit:
        raise forms.ValidationError(f"{upload.name} is larger than {limit // (1024 * 1024)} MB.")
    return UploadedMedia(upload)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def check_schema(entry: CatalogEntry, data: Any) -> list[FieldError]:
    """The schema and cross-field rules (`validate_input`), an upload counting as the data URI
    it stands for: its bytes are the API's `check_input`'s to check."""
    return validate_input(entry, placeholders(data))


class SchemaForm(forms.Form):
    """The form for one catalog entry. After `is_valid()`, `input_data` is the task input."""

    def __init__(
        self,
        entry: CatalogEntry,
        *args,
        check: Callable[[CatalogEntry, Any], list[FieldError]] = check_schema,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.entry = entry
        self.check = check
        self.specs = field_specs(entry)
        self.input_data: dict[str, Any] = {}
        # What cleaned so far, errors or not (see `draft_input`).
        self.draft: dict[str, Any] = {}
        # Problems of a re-run input under the current schema, shown beside the fields.
        self.rerun_errors: dict[str, list[str]] = {}
        # Controls the page shows beside a field (the playground's Vary: `web.batch_form`).
        self.beside: dict[str, dict] = {}
        priced = priced_fields(entry)
        for spec in self.specs:
            if spec.kind == "object_list":
                for row in range(object_rows(spec)):
                    for sub in spec.items:
                        self.fields[row_field(spec, row, sub.name)] = self._row_field(sub)
                continue
            self.fields[spec.name] = _form_field(spec)
            if spec.name in priced:
                self.fields[spec.name].widget.attrs["class"] = "priced"  # the estimate follows it
            if spec.kind in ("media", "media_list"):
                self.fields[file_field(spec)] = _file_field(spec)
        self._keep_unoffered_choices()

    def _keep_unoffered_choices(self) -> None:
        """A value a select does not offer (carried from a re-run or from another model) stays
        selected, shown as "… (not accepted)", instead of the browser silently showing the first
        option. Submitted as it is, the model's schema refuses it beside the field."""
        for name, form_field in self.fields.items():
            if not isinstance(form_field, forms.ChoiceField):
                continue
            value = self.data.get(name) if self.is_bound else self.initial.get(name)
            if value in (None, "") or str(value) in {str(choice) for choice, _ in form_field.choices}:
                continue
            form_field.choices = [*form_field.choices, (str(value), f"{value} (not accepted)")]

    @staticmethod
    def _row_field(sub: Field) -> forms.Field:
        # Rows are optional one by one; the schema's minItems / required decide afterwards.
        form_field = _form_field(sub, force_optional=True)
        form_field.widget.attrs["data-row-field"] = sub.name
        return form_field

    def groups(self) -> dict[str, list[Field]]:
        return {
            "main": [s for s in self.specs if not s.advanced],
            "advanced": [s for s in self.specs if s.advanced],
        }

    def display_groups(self) -> dict[str, list[dict]]:
        """What the template needs per field: bound fields, the file input, rows, errors."""
        groups = {}
        for group, specs in self.groups().items():
            items = []
            for spec in specs:
                errors = self.spec_errors(spec)
                item: dict[str, Any] = {
                    "spec": spec,
                    "errors": errors,
                    "id": f"field-{spec.name}",
                    "beside": self.beside.get(spec.name),
                }
                if spec.kind == "object_list":
                    item["rows"] = [
                        [{"sub": sub, "field": self[row_field(spec, row, sub.name)]} for sub in spec.items]
                        for row in range(object_rows(spec))
                    ]
                    item["filled_rows"] = max(
                        1,
                        sum(
                            1
                            for row in range(object_rows(spec))
                            if any(
                                self[row_field(spec, row, sub.name)].value() not in (None, "")
                                and sub.kind != "choice"
                                for sub in spec.items
                            )
                        ),
                    )
                else:
                    item["field"] = self[spec.name]
                    described = " ".join(
                        part
                        for part, present in (
                            (f"{item['id']}-help", spec.help_text),
                            (f"{item['id']}-errors", errors),
                        )
                        if present
                    )
                    widget_attrs = self.fields[spec.name].widget.attrs
                    if described:
                        widget_attrs["aria-describedby"] = described
                    if errors:
                        widget_attrs["aria-invalid"] = "true"
                    if spec.kind in ("media", "media_list"):
                        item["file"] = self[file_field(spec)]
                        widget_attrs["aria-label"] = f"{spec.label}: URL" + (
                            "s, one per line" if spec.kind == "media_list" else ""
                        )
                items.append(item)
            groups[group] = items
        return groups

    def advanced_has_errors(self) -> bool:
        return any(self.spec_errors(spec) for spec in self.groups()["advanced"])

    def spec_field_names(self, spec: Field) -> list[str]:
        if spec.kind == "object_list":
            return [row_field(spec, r, s.name) for r in range(object_rows(spec)) for s in spec.items]
        if spec.kind in ("media", "media_list"):
            return [spec.name, file_field(spec)]
        return [spec.name]

    def spec_errors(self, spec: Field) -> list[str]:
        names = self.spec_field_names(spec)
        errors = [str(e) for name in names for e in (self.errors.get(name, []) if self.is_bound else [])]
        return errors + [e for name in names for e in self.rerun_errors.get(name, [])]

    def clean(self) -> dict:
        cleaned = super().clean()
        data: dict[str, Any] = {}
        for spec in self.specs:
            if any(name in self.errors for name in self.spec_field_names(spec)):
                continue
            try:
                value = self._value(spec, cleaned)
            except forms.ValidationError as exc:
                self.add_error(self.spec_field_names(spec)[0], exc)
                continue
            if value is not None:
                data[spec.name] = value
        self.draft = data
        if self.errors:
            return cleaned
        for error in self.check(self.entry, data):
            self.add_error(self.field_for_error(error), error.message)
        self.input_data = data
        return cleaned

    def pricing_input(self) -> dict[str, Any] | None:
        """The values the cost depends on, exactly as a submit would send them: what the person
        typed or chose (a bound form, refused or not), else the initial values. None when one of
        them would be refused (not a number, over its maximum, not offered): such a form cannot
        run, so it has no price, rather than the price of some other form."""
        priced = priced_fields(self.entry)
        data: dict[str, Any] = {}
        for spec in self.specs:
            if spec.name not in priced:
                continue
            try:
                value = self.fields[spec.name].clean(self[spec.name].value())
            except forms.ValidationError:
                return None
            if value is not None:
                data[spec.name] = value
        top = (
            error.field.removeprefix("input.").split("[")[0].split(".")[0]
            for error in schema_errors(self.entry, data)
        )
        return None if any(name in data for name in top) else data

    def draft_input(self) -> dict[str, Any]:
        """What the person has filled in so far as an input dict, unchecked: to carry it over to
        another model. Values that do not clean are carried as typed, so nothing is lost."""
        self.is_valid()
        data = dict(self.draft)
        for spec in self.specs:
            if spec.name in data or spec.kind == "object_list":
                continue
            raw = self.data.get(spec.name)
            if raw not in (None, ""):
                data[spec.name] = raw
        return data

    def _value(self, spec: Field, cleaned: dict) -> Any:
        kind = spec.kind
        if kind == "object_list":
            return self._rows(spec, cleaned)
        raw = cleaned.get(spec.name)
        if kind == "boolean":
            return bool(raw)
        if kind == "media":
            upload = cleaned.get(file_field(spec))
            value = uploaded(upload) if upload else (raw or "").strip()
            return value or None
        if kind == "media_list":
            uploads = cleaned.get(file_field(spec)) or []
            if not isinstance(uploads, list):
                uploads = [uploads]
            values = _lines(raw) + [uploaded(u) for u in uploads]
            return values or None
        if kind == "string_list":
            return _lines(raw) or None
        if kind == "json":
            if raw in (None, ""):
                return None
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                where = f"line {exc.lineno}, column {exc.colno}"
                raise forms.ValidationError(
                    f"This is not valid JSON ({exc.msg.lower()} at {where})."
                ) from exc
            except RecursionError:  # deeper than the parser goes
                raise forms.ValidationError(TOO_DEEP) from None
            if nesting_depth(value) > MAX_JSON_DEPTH:
                raise forms.ValidationError(TOO_DEEP)
            return value
        if raw in (None, "") and kind in ("text", "textarea"):
            return raw if spec.required else None
        return raw

    def _rows(self, spec: Field, cleaned: dict) -> list[dict] | None:
        rows = []
        for row in range(object_rows(spec)):
            item, filled = {}, False
            for sub in spec.items:
                name = row_field(spec, row, sub.name)
                value = cleaned.get(name)
                if sub.kind == "media":
                    upload = self.files.get(f"{name}__file") if self.files else None
                    value = uploaded(upload) if upload else (value or "").strip()
                if value in (None, ""):
                    continue
                item[sub.name] = value
                # A row counts once the user typed into it; a pre-selected enum alone does not.
                filled = filled or sub.kind != "choice"
            if filled:
                rows.append(item)
        return rows or None

    def field_for_error(self, error: FieldError) -> str | None:
        """The form field an input error belongs beside (`input.image_urls[0]` -> image_urls)."""
        path = error.field.removeprefix("input").lstrip(".")
        top = path.split("[")[0].split(".")[0]
        spec = next((s for s in self.specs if s.name == top), None)
        if spec is None:
            return None
        if spec.kind == "object_list":
            row, sub = 0, spec.items[0].name
            rest = path[len(top) :]
            if rest.startswith("["):
                row = int(rest[1 : rest.index("]")])
                after = rest[rest.index("]") + 1 :].lstrip(".")
                sub = after or sub
            name = row_field(spec, min(row, object_rows(spec) - 1), sub)
            return name if name in self.fields else row_field(spec, 0, spec.items[0].name)
        return spec.name


def _shown(value: Any) -> str:
    """A value for people: data URIs abbreviated, long values cut."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if text.startswith("data:"):
        return f"{text[:24]}… ({len(text) * 3 // 4 // 1024} KB)"
    return text if len(text) <= 80 else text[:80] + "…"


def form_for_input(
    entry: CatalogEntry, data: dict, *, source: CatalogEntry | None = None
) -> tuple[SchemaForm, list[str]]:
    """The form for `entry` filled from an input dict: a task being re-run, or what a person had
    typed for another model (`source`).

    Every field the schema has is carried over. A value it does not accept stays in its field,
    flagged beside it (a select gains that value as an extra option, so nothing is silently
    swapped for the default); a value for a field this model lacks is listed in `problems`.
    From another model (see `translate_input`) a field may arrive under this model's name for the
    same role, a choice in this model's spelling, and the other model's defaults stay behind.
    """
    if source is not None and source.pk != entry.pk:
        data = translate_input(source, entry, data)
    specs = {spec.name for spec in field_specs(entry)}
    labels = {spec.name: spec.label for spec in field_specs(source)} if source is not None else {}
    form = SchemaForm(entry, initial=initial_from_input(entry, data))
    problems = [
        f"{labels.get(name, name)}: {_shown(value)} — this model has no such field, so it was left out."
        for name, value in data.items()
        if name not in specs
    ]
    carried = {name: value for name, value in data.items() if name in specs}
    for error in validate_input(entry, carried):
        if error.code == "required":  # an empty field is not a carried value
            continue
        name = form.field_for_error(error)
        if name:
            form.rerun_errors.setdefault(name, []).append(error.message)
        else:
            problems.append(f"{error.field.removeprefix('input.')}: {error.message}")
    return form, problems


def _same_shape(one: dict, other: dict) -> bool:
    def shape(schema: dict) -> tuple:
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return schema.get("type"), items.get("type")

    return shape(one) == shape(other)


def translate_input(source: CatalogEntry, entry: CatalogEntry, data: dict) -> dict:
    """Input written for `source`, as `entry` would take it.

    - A value equal to the source schema's default is the source model's choice, not the
      person's: it stays behind, and `entry` starts from its own default.
    - A field playing a role (aspect, count, resolution, …) under another name here moves to this
      model's field for that role (Gemini's `size` is Kling's `aspect_ratio`), when both hold the
      same kind of value.
    - A choice written in other letters than this model offers (`4K` for `4k`, `720p` for `720P`)
      takes this model's spelling: it is the same value (prices match it the same way).
    """
    source_props = source.input_schema.get("properties") or {}
    props = entry.input_schema.get("properties") or {}
    renamed = {}
    for role, field_name in (source.roles or {}).items():
        target = (entry.roles or {}).get(role)
        movable = target and target != field_name and target not in source_props and field_name not in props
        if (
            movable
            and isinstance(props.get(target), dict)
            and _same_shape(source_props[field_name], props[target])
        ):
            renamed[field_name] = target
    translated = {}
    for name, value in data.items():
        prop = source_props.get(name) if isinstance(source_props.get(name), dict) else {}
        # What the form starts from: the schema default, or off for a switch without one.
        start = prop.get("default", False if prop.get("type") == "boolean" else ...)
        if value == start and type(value) is type(start):
            continue
        name = renamed.get(name, name)
        offered = props.get(name, {}).get("enum") if isinstance(props.get(name), dict) else None
        if offered and value not in offered and isinstance(value, str):
            value = next((o for o in offered if isinstance(o, str) and o.lower() == value.lower()), value)
        translated[name] = value
    return translated


def initial_from_input(entry: CatalogEntry, data: dict) -> dict[str, Any]:
    """Form initial values for an existing task input (re-run)."""
    initial: dict[str, Any] = {}
    for spec in field_specs(entry):
        if spec.name not in data:
            continue
        value = data[spec.name]
        if spec.kind in ("media_list", "string_list") and isinstance(value, list):
            initial[spec.name] = "\n".join(str(v) for v in value)
        elif spec.kind == "object_list" and isinstance(value, list):
            for row, item in enumerate(value[: object_rows(spec)]):
                for sub, sub_value in (item or {}).items():
                    initial[row_field(spec, row, sub)] = sub_value
        elif spec.kind == "json":
            initial[spec.name] = json.dumps(value)
        else:
            initial[spec.name] = value
    return initial


def as_form_data(entry: CatalogEntry, data: dict) -> dict[str, Any]:
    """The POST data a person would send to get `data` back (tests, and re-run checks)."""
    form_data = {}
    for name, value in initial_from_input(entry, data).items():
        if isinstance(value, bool):
            if value:
                form_data[name] = "on"
        else:
            form_data[name] = str(value)
    return form_data
