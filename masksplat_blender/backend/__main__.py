"""Start the backend: `python -m masksplat_blender.backend ...` or by this file's path.

By path (how the installed extension starts it, as `bl_ext.<repo>.masksplat`), the add-on
folder's parent goes on sys.path and the folder is imported as a top-level package, so
the relative imports inside it work without Blender. A Python without numpy or torch
gets one clear JSON line instead of a traceback.
"""

import importlib
import importlib.util
import json
import sys
from pathlib import Path


def _missing() -> list:
    return [name for name in ("numpy", "torch") if importlib.util.find_spec(name) is None]


if __name__ == "__main__" and _missing():
    names = " and ".join(_missing())
    print(json.dumps({"event": "fatal", "kind": "torch_missing", "error": f"this Python ({sys.executable}) has no {names}"}), flush=True)
    print(f"masksplat backend: {sys.executable} has no {names}", file=sys.stderr)
    sys.exit(3)

if __package__:
    from .server import main
else:
    addon = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(addon.parent))
    main = importlib.import_module(f"{addon.name}.backend.server").main

if __name__ == "__main__":
    sys.exit(main())
