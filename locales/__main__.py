import sys

from locales import tools


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "extract":
        tools.update()
        print(f"wrote {tools.template_path().name} and updated {', '.join(tools.LANGUAGES)}")
        return 0
    if command == "compile":
        tools.compile_mo()
        return 0
    if command == "check":
        found = list(tools.problems())
        for line in found:
            print(line)
        print("catalogs complete" if not found else f"{len(found)} problem(s)")
        return 1 if found else 0
    print("usage: python -m locales [extract|check|compile]", file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
