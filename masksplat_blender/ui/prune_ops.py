"""Prune Splats: remove the Gaussians no view needs, with a quality report first."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty

from ..scene.pruning import PrunePlan
from .modal import PlanWork, interactive


class MASKSPLAT_OT_prune_splats(PlanWork, bpy.types.Operator):
    """Remove Gaussians that add nothing to any view (reports PSNR before and after first)"""

    bl_idname = "masksplat.prune_splats"
    bl_label = "Prune Splats"

    cameras: EnumProperty(
        name="Cameras",
        items=(("ALL", "All", "Every camera of the splat's camera collection"), ("SELECTED", "Selected", "The selected cameras")),
        default="ALL",
    )
    orbit_views: IntProperty(
        name="Add Orbit Views",
        description="Extra cameras on a sphere around the object, so Gaussians seen only from places "
        "without a camera are kept (pruning is only lossless for the views it uses)",
        default=0,
        min=0,
        max=512,
    )
    orbit_size: IntProperty(name="Orbit View Size", default=256, min=16, max=4096)
    criterion: EnumProperty(
        name="Criterion",
        items=(
            ("ZERO", "No Contribution", "Remove Gaussians that add exactly nothing to any pixel (lossless for these views)"),
            ("THRESHOLD", "Below Threshold", "Remove Gaussians whose contribution per view pixel is below the threshold"),
            ("FRACTION", "Smallest Fraction", "Remove the given fraction with the smallest contribution"),
        ),
        default="ZERO",
    )
    threshold: FloatProperty(name="Threshold", description="Contribution per view pixel (a Gaussian covering 10 pixels fully in one of 32 views at 256x256 has 5e-6)", default=1e-8, min=0.0, precision=10)
    fraction: FloatProperty(name="Fraction", default=0.1, min=0.001, max=0.99)
    min_psnr: FloatProperty(name="Minimum PSNR", description="With Smallest Fraction: remove less until the used views keep this PSNR (0 = off)", default=0.0, min=0.0, max=100.0)

    def _criterion(self) -> str:
        return {"ZERO": "zero", "THRESHOLD": f"threshold:{self.threshold!r}", "FRACTION": f"fraction:{self.fraction!r}"}[self.criterion]

    def make_plan(self, context, obj) -> PrunePlan:
        return PrunePlan(obj, context.scene, self.cameras, self.orbit_views, self.orbit_size, self._criterion(), self.min_psnr)

    def finish(self, context, result) -> set:
        status = super().finish(context, result)
        if interactive(context):
            show_report_popup(context, result[1].as_dict())
        return status

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self) if interactive(context) else self.execute(context)

    def draw(self, context):
        layout = self.layout
        for name in ("cameras", "orbit_views", "criterion"):
            layout.prop(self, name)
        if self.criterion == "THRESHOLD":
            layout.prop(self, "threshold")
        elif self.criterion == "FRACTION":
            layout.prop(self, "fraction")
            layout.prop(self, "min_psnr")


def show_report_popup(context, report: dict) -> None:
    """The quality report as a popup: totals, then the worst views."""

    def draw(menu, _context):
        layout = menu.layout
        psnr = report["mean_psnr_used_views"]
        layout.label(text=f"Removed {report['removed']:,} of {report['gaussians']:,} ({100 * report['fraction_removed']:.1f}%)")
        layout.label(text=f"Used views: {'identical' if psnr is None else f'{psnr:.1f} dB mean PSNR'}")
        layout.label(text=f"Largest pixel difference: {report['max_pixel_difference']:.4f}")
        layout.label(text=f"File size: {report['bytes_before'] / 2**20:.1f} MB -> {report['bytes_after'] / 2**20:.1f} MB")
        worst = sorted(report["views"], key=lambda v: v["psnr"] if v["psnr"] is not None else 1e9)[:5]
        for view in worst:
            value = "identical" if view["psnr"] is None else f"{view['psnr']:.1f} dB"
            layout.label(text=f"  {view['view']}: {value}, max diff {view['max_diff']:.4f}")

    context.window_manager.popup_menu(draw, title="Prune Splats", icon="INFO")


def menu_object(self, context):
    self.layout.operator(MASKSPLAT_OT_prune_splats.bl_idname, icon="TRASH")


CLASSES = (MASKSPLAT_OT_prune_splats,)
MENUS = ((bpy.types.VIEW3D_MT_object, menu_object),)
