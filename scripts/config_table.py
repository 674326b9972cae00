"""Print the README's configuration table from ``Settings`` (run after adding a setting; a test checks it)."""

from runtime.config import Settings


def main() -> None:
    print("| Variable | Meaning | Default |")
    print("| --- | --- | --- |")
    for name, doc, default in Settings.documented():
        shown = "" if default in ((), "") else default
        print(f"| `{name}` | {doc} | `{shown}` |" if shown != "" else f"| `{name}` | {doc} | |")


if __name__ == "__main__":
    main()
