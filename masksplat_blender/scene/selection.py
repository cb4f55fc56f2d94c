"""Votes on splat objects and the selection they make.

Votes are point attributes (`ms_fg`, `ms_bg`) so they are saved with the .blend and
survive Undo; the chosen Gaussians become Blender's own vertex selection, so Delete,
Separate, Hide and Undo work on them. Votes are cached per camera (keyed by the mask's
pixels, the camera and the geometry), so after one more painted view only that view is
computed again.
"""

from __future__ import annotations

import hashlib

import bpy
import numpy as np

from ..core.cameras import Camera
from ..core.masks import edge_band
from ..core.selection import combine, grow, splat_sizes, splat_values, threshold
from ..core.splat_io import SH_C0
from ..core.tint import tint_sh
from ..core.transform import bake_transform
from ..core.views import pick_splat
from ..core.votes import fill_never_seen, never_seen, select_two_class, summarize
from . import masks as scene_masks
from .cameras import camera_from_object
from .display import SHOWN_SELECTION
from .splat_object import is_splat_object

VOTE_ATTRIBUTES = ("ms_fg", "ms_bg")
_CACHE: dict[str, dict[str, np.ndarray]] = {}  # object name -> {view key: [N, 2] votes}


def _float_attribute(obj, name: str) -> np.ndarray:
    values = np.empty(len(obj.data.vertices), dtype=np.float32)
    obj.data.attributes[name].data.foreach_get("value", values)
    return values


def world_gaussians(obj: bpy.types.Object) -> dict[str, np.ndarray]:
    """The object's Gaussians in world space as the backend wants them (float32)."""
    mesh = obj.data
    n = len(mesh.vertices)
    positions = np.empty(n * 3, dtype=np.float32)
    mesh.attributes["position"].data.foreach_get("vector", positions)
    means = positions.reshape(n, 3)
    quats = np.stack([_float_attribute(obj, f"rot_{i}") for i in range(4)], axis=1)
    log_scales = np.stack([_float_attribute(obj, f"scale_{i}") for i in range(3)], axis=1)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    if not np.allclose(matrix, np.eye(4), rtol=0, atol=1e-9):
        means, quats, log_scales, _ = bake_transform(means, quats, log_scales, None, matrix)
    return {
        "means": np.ascontiguousarray(means, dtype=np.float32),
        "quats": np.ascontiguousarray(quats, dtype=np.float32),
        "log_scales": np.ascontiguousarray(log_scales, dtype=np.float32),
        "opacity_logits": _float_attribute(obj, "opacity"),
    }


def world_sh(obj: bpy.types.Object) -> np.ndarray:
    """[N, (d+1)^2, 3] SH of the object (DC first), rotated with the object."""
    from ..core.sh_rotation import rotate_sh
    from ..core.transform import split_linear

    degree = obj.masksplat.sh_degree
    m = (degree + 1) ** 2 - 1
    dc = np.stack([_float_attribute(obj, f"f_dc_{i}") for i in range(3)], axis=1)[:, None, :]
    if m == 0:
        return np.ascontiguousarray(dc)
    rest = np.stack([_float_attribute(obj, f"f_rest_{i}") for i in range(3 * m)], axis=1)
    rest = rest.reshape(-1, 3, m).transpose(0, 2, 1)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    if not np.allclose(matrix[:3, :3], np.eye(3), rtol=0, atol=1e-9):
        rest = rotate_sh(rest, split_linear(matrix[:3, :3])[0])
    return np.ascontiguousarray(np.concatenate([dc, rest], axis=1), dtype=np.float32)


def visible_splats(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return [o for o in scene.objects if is_splat_object(o) and o.visible_get()]


def preview_gaussians(scene: bpy.types.Scene) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(world-space arrays, SH [N, K, 3]) of every visible splat object, for a preview render:
    SH padded to the highest degree, the selection tinted where the object shows it."""
    splats = visible_splats(scene)
    if not splats:
        raise ValueError("no visible splat object to preview")
    shs = []
    for obj in splats:
        sh = world_sh(obj)
        shs.append(tint_sh(sh, vertex_selection(obj)) if obj.masksplat.show_selection else sh)
    degree = max(sh.shape[1] for sh in shs)
    shs = [np.pad(sh, ((0, 0), (0, degree - sh.shape[1]), (0, 0))) for sh in shs]
    return stack_gaussians([world_gaussians(o) for o in splats]), np.concatenate(shs)


def stack_gaussians(parts: list[dict]) -> dict[str, np.ndarray]:
    """One set of backend arrays from several (the target first, then its occluders)."""
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}


def with_occluders(obj: bpy.types.Object, scene: bpy.types.Scene) -> tuple[int, dict[str, np.ndarray]]:
    """(the object's Gaussian count, its world-space arrays followed by every occluder's):
    votes for the first `count` rows belong to the object."""
    target = world_gaussians(obj)
    return len(target["means"]), stack_gaussians([target, *(world_gaussians(o) for o in occluders(obj, scene))])


def scene_cameras(obj: bpy.types.Object, scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The object's camera collection, or every camera in the scene when it has none."""
    collection = obj.masksplat.camera_collection
    source = collection.all_objects if collection is not None else scene.objects
    return sorted((o for o in source if o.type == "CAMERA"), key=lambda o: o.name)


def masked_cameras(obj, scene) -> list[tuple[bpy.types.Object, Camera]]:
    return [(cam, camera_from_object(cam, scene)) for cam in scene_cameras(obj, scene) if cam.masksplat.mask is not None]


def occluders(obj: bpy.types.Object, scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """Other visible splat objects: they hide the target in the views but get no votes."""
    return [o for o in visible_splats(scene) if o is not obj]


def _view_key(cam_obj, cam: Camera, geometry: str) -> str:
    parts = [scene_masks.mask_fingerprint(cam_obj), geometry, np.round(cam.world_to_camera, 9).tobytes().hex(),
             repr((cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height))]  # fmt: skip
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


def _geometry_key(arrays: dict) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in ("means", "quats", "log_scales", "opacity_logits"):
        digest.update(arrays[name].tobytes())
    return digest.hexdigest()


def _with_edge_band(stored, band: int):
    """The mask with its uncertain edge pixels added to the ignore region."""
    mask, ignore = stored
    if band <= 0:
        return mask, ignore
    unsure = edge_band(mask, band)
    return mask, unsure if ignore is None else (ignore | unsure)


class VotePlan:
    """What a vote computation needs, gathered from Blender on the main thread.

    Like every plan (LabelPlan, PrunePlan, TransferPlan): `run(backend, progress, cancelled)`
    touches no Blender data, so a modal operator can run it in a worker thread; `backend` is
    a client.PlanBackend. `apply(obj, scene, result)` writes the result back and says what it did.
    """

    def __init__(self, obj, scene):
        views = masked_cameras(obj, scene)
        if not views:
            raise ValueError(f"no camera of '{obj.name}' has a mask yet: paint one or use Load Masks")
        self.object_name = obj.name
        target = world_gaussians(obj)
        others = [world_gaussians(o) for o in occluders(obj, scene)]
        self.count = len(target["means"])
        geometry = _geometry_key(target) + "".join(_geometry_key(o) for o in others)
        self.cache = dict(_CACHE.get(obj.name, {}))
        band = int(obj.masksplat.edge_band)
        self.keys = [_view_key(cam_obj, cam, f"{geometry}|band{band}") for cam_obj, cam in views]
        self.todo = [i for i, key in enumerate(self.keys) if key not in self.cache]
        self.cameras = [cam for _, cam in views]
        self.masks = {i: _with_edge_band(scene_masks.camera_mask(views[i][0]), band) for i in self.todo}
        self.arrays = stack_gaussians([target, *others]) if self.todo else None

    def run(self, backend, progress=None, cancelled=None) -> np.ndarray:
        """Votes [N, 2] over all masked views; only views not in the cache are computed."""
        for done, i in enumerate(self.todo):
            mask, ignore = self.masks[i]
            votes = backend.votes(self.arrays, [self.cameras[i]], [mask], [ignore], cancelled=cancelled)
            self.cache[self.keys[i]] = votes[: self.count]
            if progress:
                progress(done + 1, len(self.todo))
        return np.sum([self.cache[key] for key in self.keys], axis=0, dtype=np.float64).astype(np.float32)

    def commit(self) -> None:
        """Keep the per-view votes for next time (only after a successful run)."""
        _CACHE[self.object_name] = {key: self.cache[key] for key in self.keys}

    def apply(self, obj, scene, votes: np.ndarray) -> str:
        """Keep the votes (on the object and in the cache) and select what they choose."""
        self.commit()
        store_votes(obj, votes)
        return f"{apply_selection(obj)} ({len(self.keys)} views, {len(self.todo)} computed)"


def store_votes(obj: bpy.types.Object, votes: np.ndarray) -> None:
    mesh = obj.data
    for column, name in enumerate(VOTE_ATTRIBUTES):
        attribute = mesh.attributes.get(name) or mesh.attributes.new(name, "FLOAT", "POINT")
        attribute.data.foreach_set("value", np.ascontiguousarray(votes[:, column], dtype=np.float32))


def has_votes(obj) -> bool:
    return obj is not None and obj.type == "MESH" and all(name in obj.data.attributes for name in VOTE_ATTRIBUTES)


def stored_votes(obj) -> tuple[np.ndarray, np.ndarray]:
    return _float_attribute(obj, "ms_fg"), _float_attribute(obj, "ms_bg")


def apply_selection(obj: bpy.types.Object, beta: float | None = None, bias: float | None = None, fill: bool | None = None):
    """Select the Gaussians the stored votes choose (instant: no backend)."""
    fg, bg = stored_votes(obj)
    beta = obj.masksplat.beta if beta is None else beta
    bias = obj.masksplat.background_bias if bias is None else bias
    fill = obj.masksplat.fill_unseen if fill is None else fill
    selected = select_two_class(fg, bg, beta, bias)
    if fill:
        positions = np.empty(len(fg) * 3, dtype=np.float32)
        obj.data.attributes["position"].data.foreach_get("vector", positions)
        selected = fill_never_seen(positions.reshape(-1, 3), selected, ~never_seen(fg, bg))
    set_vertex_selection(obj, selected)
    return summarize(fg, bg, selected)


SELECT_ATTRIBUTE = ".select_vert"  # Blender's own vertex selection, as a boolean point attribute


def vertex_selection(obj) -> np.ndarray:
    """bool [N]: Blender's vertex selection (in Edit Mode, the edit mesh's)."""
    if obj.mode == "EDIT":
        obj.update_from_editmode()
    values = np.zeros(len(obj.data.vertices), dtype=bool)
    attribute = obj.data.attributes.get(SELECT_ATTRIBUTE)
    if attribute is not None:
        attribute.data.foreach_get("value", values)
    return values


def selected_count(obj) -> int:
    """How many Gaussians are selected (cheap in Edit Mode: Blender keeps the count)."""
    if obj.mode == "EDIT":
        return int(obj.data.total_vert_sel)
    return int(np.count_nonzero(vertex_selection(obj)))


def set_vertex_selection(obj, selected: np.ndarray) -> None:
    """Make `selected` Blender's vertex selection and what the display tints.

    In Object Mode one raw copy per attribute (MeshVertex.select is much slower); in Edit
    Mode the edit mesh is the truth (the mesh data is overwritten when the mode ends), so
    the selection goes there.
    """
    selected = np.ascontiguousarray(selected, dtype=bool)
    mesh = obj.data
    if len(selected) != len(mesh.vertices):
        raise ValueError(f"a selection of {len(selected)} for '{obj.name}' with {len(mesh.vertices):,} Gaussians")
    if obj.mode == "EDIT":
        _set_edit_selection(mesh, selected)
        return
    attribute = mesh.attributes.get(SELECT_ATTRIBUTE) or mesh.attributes.new(SELECT_ATTRIBUTE, "BOOLEAN", "POINT")
    attribute.data.foreach_set("value", selected)
    _write_shown(mesh, selected)
    mesh.update()


def _write_shown(mesh, selected: np.ndarray) -> None:
    attribute = mesh.attributes.get(SHOWN_SELECTION) or mesh.attributes.new(SHOWN_SELECTION, "FLOAT", "POINT")
    attribute.data.foreach_set("value", selected.astype(np.float32))


def _set_edit_selection(mesh, selected: np.ndarray) -> None:
    import bmesh

    bm = bmesh.from_edit_mesh(mesh)
    layer = bm.verts.layers.float.get(SHOWN_SELECTION) or bm.verts.layers.float.new(SHOWN_SELECTION)
    for vert, chosen in zip(bm.verts, selected.tolist(), strict=True):
        vert.select = chosen
        vert[layer] = float(chosen)
    bm.select_flush(False)
    bmesh.update_edit_mesh(mesh, loop_triangles=False, destructive=False)


def sync_shown_selection(obj) -> bool:
    """After Blender's own selection tools (Object Mode only): make the display's copy of
    the selection match. True when it had to change."""
    if obj.mode == "EDIT":
        return False
    selected = vertex_selection(obj)
    shown = np.zeros(len(selected), dtype=np.float32)
    attribute = obj.data.attributes.get(SHOWN_SELECTION)
    if attribute is not None:
        attribute.data.foreach_get("value", shown)
    if (attribute is None and not selected.any()) or (attribute is not None and np.array_equal(shown > 0.5, selected)):
        return False
    _write_shown(obj.data, selected)
    obj.data.update()
    return True


def base_colours(obj) -> np.ndarray:
    """[N, 3] float f_dc of the object's Gaussians (their view-independent colour's SH)."""
    return np.stack([_float_attribute(obj, f"f_dc_{i}") for i in range(3)], axis=1)


def grow_selection(obj, radius: float = 0.0, k: int = 0, in_splat_sizes: bool = True, steps: int = 1,
                   shrink: bool = False) -> tuple[int, int]:  # fmt: skip
    """Grow (or shrink) the object's selection by neighbours in world space (see core.selection.grow;
    `in_splat_sizes`: the radius counts standard deviations of the splats, else world units).
    Returns the selected counts (before, after)."""
    gaussians = world_gaussians(obj)
    before = vertex_selection(obj)
    sizes = splat_sizes(gaussians["log_scales"]) if in_splat_sizes and k <= 0 else None
    after = grow(gaussians["means"], before, radius, k, sizes, steps, shrink)
    set_vertex_selection(obj, after)
    return int(before.sum()), int(after.sum())


def select_by_value(obj, kind: str, limit: float, above: bool, action: str = "SET", reference=None) -> int:
    """Select by opacity, largest scale (over the median) or colour distance from `reference`
    RGB (see core.selection.splat_values), combined with the selection by `action`.
    Returns how many Gaussians the value picks."""
    gaussians = world_gaussians(obj)
    values = splat_values(kind, gaussians["opacity_logits"], gaussians["log_scales"],
                          base_colours(obj) if kind == "COLOUR" else None, reference)  # fmt: skip
    chosen = threshold(values, limit, above)
    set_vertex_selection(obj, combine(vertex_selection(obj), chosen, action))
    return int(chosen.sum())


def splat_colour(obj, index: int) -> tuple[float, float, float]:
    """The base colour (RGB 0..1) of one Gaussian, as select-by-colour measures it."""
    return tuple(float(c) for c in np.clip(0.5 + SH_C0 * base_colours(obj)[index], 0.0, 1.0))


def pick_gaussian(obj, view_projection, width: int, height: int, mouse) -> int:
    """The object's Gaussian under the mouse in a viewport region (see core.views.pick_splat), or -1."""
    gaussians = world_gaussians(obj)
    opacities = splat_values("OPACITY", gaussians["opacity_logits"])
    return pick_splat(gaussians["means"], view_projection, width, height, mouse, opacities)
