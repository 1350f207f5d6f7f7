"""Path converters of the web pages."""


class RowId:
    """A row's id in a URL: up to 18 digits, so any value fits a 64-bit integer column. Django's
    `int` takes any number of digits, and SQLite fails on one it cannot hold (OverflowError, a
    500) where a made-up id must be a 404 like any other."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
