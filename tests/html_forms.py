"""A form as a browser holds it: parsed from a rendered page, filled in the way a person does, and
turned into exactly what the browser would submit. Tests use it to prove that a form parses what it
renders, without building the POST data by hand."""

from dataclasses import dataclass, field
from fnmatch import fnmatch
from html.parser import HTMLParser

from django.core.files.uploadedfile import SimpleUploadedFile

NOT_SUBMITTED = {"submit", "button", "reset", "image"}


@dataclass
class Control:
    tag: str  # input, select, textarea
    type: str  # text, number, checkbox, file, hidden, ... ; select and textarea for those tags
    name: str
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    accept: str = ""
    options: list[list] = field(default_factory=list)  # [value, selected]
    files: list[SimpleUploadedFile] = field(default_factory=list)


class BrowserForm(HTMLParser):
    """The named controls of `<form id=form_id>` in `html`, with their initial state."""

    def __init__(self, html: str, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.controls: list[Control] = []
        self._in_form = False
        self._found = False
        self._text_of: Control | None = None  # the textarea or option whose text comes next
        self._select: Control | None = None
        self.feed(html)
        self.close()
        assert self._found, f'no <form id="{form_id}"> on the page'

    # Parsing

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self._in_form = self._found = True
            return
        if not self._in_form:
            return
        disabled = "disabled" in attrs
        if tag == "input":
            kind = (attrs.get("type") or "text").lower()
            default = "on" if kind in ("checkbox", "radio") else ""
            self.controls.append(
                Control(
                    "input",
                    kind,
                    attrs.get("name") or "",
                    value=attrs.get("value") if attrs.get("value") is not None else default,
                    checked="checked" in attrs,
                    disabled=disabled,
                    multiple="multiple" in attrs,
                    accept=attrs.get("accept") or "",
                )
            )
        elif tag == "textarea":
            self._text_of = Control("textarea", "textarea", attrs.get("name") or "", disabled=disabled)
            self.controls.append(self._text_of)
        elif tag == "select":
            self._select = Control(
                "select", "select", attrs.get("name") or "", disabled=disabled, multiple="multiple" in attrs
            )
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            option = [attrs.get("value"), "selected" in attrs]
            self._select.options.append(option)
            self._text_of = option if option[0] is None else None

    def handle_data(self, data):
        if isinstance(self._text_of, Control):
            self._text_of.value += data
        elif isinstance(self._text_of, list):  # an option without a value attribute: its text
            self._text_of[0] = (self._text_of[0] or "") + data

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
        elif tag == "textarea" and isinstance(self._text_of, Control):
            # HTML drops a textarea's first newline (Django renders "<textarea>\n{value}</textarea>").
            self._text_of.value = self._text_of.value.removeprefix("\n")
            self._text_of = None
        elif tag == "option":
            if isinstance(self._text_of, list):
                self._text_of[0] = self._text_of[0].strip()
            self._text_of = None
        elif tag == "select":
            self._select = None

    # What a person does

    def control(self, name: str) -> Control:
        found = [c for c in self.controls if c.name == name]
        assert len(found) == 1, f"{len(found)} controls named {name!r} in the form"
        assert not found[0].disabled, f"{name!r} is disabled"
        return found[0]

    def names(self) -> set[str]:
        return {c.name for c in self.controls if c.name}

    def type(self, name: str, text: str) -> None:
        control = self.control(name)
        assert control.type in ("text", "textarea", "number", "url", "email", "search"), (
            f"{name!r} is a {control.type}, nothing to type into"
        )
        control.value = text

    def choose(self, name: str, value: str) -> None:
        control = self.control(name)
        assert control.tag == "select", f"{name!r} is a {control.type}, not a list to choose from"
        offered = [option[0] for option in control.options]
        assert value in offered, f"{name!r} offers {offered}, not {value!r}"
        for option in control.options:
            option[1] = option[0] == value

    def tick(self, name: str, on: bool = True) -> None:
        control = self.control(name)
        assert control.type == "checkbox", f"{name!r} is a {control.type}, not a checkbox"
        control.checked = on

    def attach(self, name: str, upload: SimpleUploadedFile) -> None:
        control = self.control(name)
        assert control.type == "file", f"{name!r} is a {control.type}, not a file input"
        patterns = [p.strip() for p in control.accept.split(",") if p.strip()]
        assert not patterns or any(fnmatch(upload.content_type, p) for p in patterns), (
            f"{name!r} accepts {control.accept}, not {upload.content_type}"
        )
        assert control.multiple or not control.files, f"{name!r} takes one file"
        control.files.append(upload)

    def enter(self, name: str, value) -> None:
        """Give the control `name` the value `value` with whatever it is: tick a switch, choose
        an option, type into a field."""
        control = self.control(name)
        if control.type == "checkbox":
            assert isinstance(value, bool), f"{name!r} is a checkbox; {value!r} is not true or false"
            self.tick(name, value)
        elif control.tag == "select":
            self.choose(name, str(value))
        else:
            assert not isinstance(value, bool), f"{name!r} is a {control.type}; {value!r} needs a switch"
            self.type(name, str(value))

    # What the browser sends

    def submission(self) -> dict[str, list]:
        """The form data set, as Django's test client takes it for a multipart POST: every value
        under its name, in order; uploads as files. Empty file inputs send nothing."""
        sent: dict[str, list] = {}
        for control in self.controls:
            if not control.name or control.disabled or control.type in NOT_SUBMITTED:
                continue
            if control.type in ("checkbox", "radio"):
                values = [control.value] if control.checked else []
            elif control.tag == "select":
                values = [option[0] for option in control.options if option[1]]
                if not values and not control.multiple and control.options:
                    values = [control.options[0][0]]  # nothing selected: the first option is
            elif control.type == "file":
                values = list(control.files)
            else:
                values = [control.value]
            if values:
                sent.setdefault(control.name, []).extend(values)
        return sent
