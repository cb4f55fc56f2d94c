"""Start the backend: `python -m masksplat_blender.backend ...` or by this file's path.

By path (how the installed extension starts it: there the package is
`bl_ext.<repo>.masksplat`, which plain Python cannot import), the add-on folder is
loaded as a top-level package under its folder name, so the relative imports inside it
work without Blender. The folder's parent (Blender's extensions folder, full of other
add-ons) is not put on sys.path, so no other extension can shadow a module the backend
needs, and this file's own folder is taken off sys.path for the same reason.
A Python without numpy or torch gets one clear JSON line instead of a traceback.
"""

import importlib
import importlib.util
import json
import sys
from pathlib import Path


def _missing() -> list:
    return [name for name in ("numpy", "torch") if importlib.util.find_spec(name) is None]


def _load_by_path():
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]
    addon = here.parent
    name = addon.name if addon.name.isidentifier() else "masksplat_addon"
    package = sys.modules.get(name)
    if package is None or Path(getattr(package, "__file__", "") or "").resolve().parent != addon:
        spec = importlib.util.spec_from_file_location(name, addon / "__init__.py", submodule_search_locations=[str(addon)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{name}.backend.server").main


if __name__ == "__main__" and _missing():
    names = " and ".join(_missing())
    print(json.dumps({"event": "fatal", "kind": "torch_missing", "error": f"this Python ({sys.executable}) has no {names}"}), flush=True)
    print(f"masksplat backend: {sys.executable} has no {names}", file=sys.stderr)
    sys.exit(3)

if __package__:
    from .server import main
else:
    main = _load_by_path()

if __name__ == "__main__":
    sys.exit(main())
