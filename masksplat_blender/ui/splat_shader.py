"""The Gaussian display's GPU side: the shader, the quad it instances, texture uploads, one draw.

Vertex shader, per instance: the sorted index from the order texture, the Gaussian from
the four data textures (core/splat_display's layout), then gsplat's EWA projection
J W Sigma W^T J^T with J the Jacobian of the full projection to pixels (so perspective,
lens shift and orthographic views are one formula; the centre's NDC clamped to +-1.3 as
gsplat clamps to 1.3x the image), 0.3 px^2 on the diagonal, and a quad along the
eigenvectors out to where opacity * exp(-d^2 / 2) reaches 1/255. Fragment shader:
alpha = min(0.999, opacity * exp(-0.5 d^T Sigma'^-1 d)), discarded below 1/255 (the
backend's rules, backend/raster_cpu.py), written premultiplied for back-to-front
ALPHA_PREMULT blending. Everything is in window pixels (y up, centres at +0.5).

`gpu` is imported inside the functions: batch jobs (`blender -b`, no drawing) import this
module's package without it.
"""

from __future__ import annotations

import numpy as np

from ..core.splat_display import TEXELS, TEXTURE_WIDTH

VERTEX = """
void main()
{
  int n = gl_InstanceID;
  int tex_width = textureSize(tex0, 0).x;
  /* the object matrix's last row is always 0 0 0 1: it brings the viewport size instead
     (two matrices fill the 128 bytes of push constants every backend has) */
  vec2 viewport = vec2(u_model_view[0][3], u_model_view[1][3]);
  /* and whether the target treats colour as scene-linear (the 3D view encodes it to sRGB after) */
  bool to_linear = u_model_view[2][3] > 0.5;
  mat4 model_view = u_model_view;
  model_view[0][3] = 0.0;
  model_view[1][3] = 0.0;
  model_view[2][3] = 0.0;
  model_view[3][3] = 1.0;
  int index = int(texelFetch(order_tex, ivec2(n % tex_width, n / tex_width), 0).r + 0.5);
  ivec2 at = ivec2(index % tex_width, index / tex_width);
  vec4 t0 = texelFetch(tex0, at, 0);
  vec4 t1 = texelFetch(tex1, at, 0);
  vec4 t2 = texelFetch(tex2, at, 0);
  float opacity = t0.w;
  vec4 view_pos = model_view * vec4(t0.xyz, 1.0);
  vec4 clip = u_projection * view_pos;
  bool perspective = u_projection[3][3] == 0.0;
  v_offset = vec2(0.0);
  v_conic = vec3(0.0);
  v_colour = vec4(0.0);
  gl_Position = vec4(0.0, 0.0, 2.0, 1.0); /* culled: outside the clip volume */
  /* gsplat's near plane in perspective (0.01); an orthographic view keeps its clip range */
  if (opacity < 1.0 / 255.0 || (perspective && clip.w < 0.01) || (!perspective && abs(clip.z) > clip.w)) {
    return;
  }
  mat3 rot = mat3(model_view);
  mat3 sigma = mat3(t1.x, t1.y, t1.z, t1.y, t1.w, t2.x, t1.z, t2.x, t2.y);
  mat3 sv = rot * sigma * transpose(rot);
  vec2 ndc = clip.xy / clip.w;
  vec2 nc = clamp(ndc, -1.3, 1.3);
  vec3 row0 = vec3(u_projection[0][0], u_projection[1][0], u_projection[2][0]);
  vec3 row1 = vec3(u_projection[0][1], u_projection[1][1], u_projection[2][1]);
  vec3 row3 = vec3(u_projection[0][3], u_projection[1][3], u_projection[2][3]);
  vec3 jx = 0.5 * viewport.x * (row0 - nc.x * row3) / clip.w;
  vec3 jy = 0.5 * viewport.y * (row1 - nc.y * row3) / clip.w;
  float a = dot(jx, sv * jx) + 0.3;
  float b = dot(jx, sv * jy);
  float c = dot(jy, sv * jy) + 0.3;
  float det = a * c - b * b;
  if (det <= 0.0) {
    return;
  }
  float mid = 0.5 * (a + c);
  float root = sqrt(max(mid * mid - det, 0.0));
  float l1 = mid + root;
  float l2 = max(mid - root, 0.0);
  vec2 v1 = (abs(b) > 1e-9 * (a + c)) ? normalize(vec2(b, l1 - a)) : ((a >= c) ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
  vec2 v2 = vec2(-v1.y, v1.x);
  float k = sqrt(2.0 * log(255.0 * opacity));
  vec2 offset = corner.x * k * sqrt(l1) * v1 + corner.y * k * sqrt(l2) * v2;
  vec2 centre = (ndc * 0.5 + 0.5) * viewport;
  gl_Position = vec4((centre + offset) / viewport * 2.0 - 1.0, clamp(clip.z / clip.w, -1.0, 1.0), 1.0);
  v_offset = offset;
  v_conic = vec3(c, -b, a) / det;
  vec3 rgb = texelFetch(tex3, at, 0).rgb;
  if (to_linear) {
    rgb = mix(rgb / 12.92, pow((rgb + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), rgb));
  }
  v_colour = vec4(rgb, opacity);
}
"""

FRAGMENT = """
void main()
{
  vec2 d = v_offset;
  float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
  if (power > 0.0) {
    discard;
  }
  float alpha = min(0.999, v_colour.a * exp(power));
  if (alpha < 1.0 / 255.0) {
    discard;
  }
  frag_colour = vec4(v_colour.rgb * alpha, alpha);
}
"""

_CACHE: dict = {}


def shader_and_batch():
    """(shader, quad batch), made once per session."""
    if "shader" not in _CACHE:
        import gpu
        from gpu_extras.batch import batch_for_shader

        interface = gpu.types.GPUStageInterfaceInfo("masksplat_splat_interface")
        interface.smooth("VEC2", "v_offset")
        interface.flat("VEC3", "v_conic")
        interface.flat("VEC4", "v_colour")
        info = gpu.types.GPUShaderCreateInfo()
        info.push_constant("MAT4", "u_model_view")
        info.push_constant("MAT4", "u_projection")
        info.sampler(0, "FLOAT_2D", "order_tex")
        for slot in range(TEXELS):
            info.sampler(slot + 1, "FLOAT_2D", f"tex{slot}")
        info.vertex_in(0, "VEC2", "corner")
        info.vertex_out(interface)
        info.fragment_out(0, "VEC4", "frag_colour")
        info.vertex_source(VERTEX)
        info.fragment_source(FRAGMENT)
        shader = gpu.shader.create_from_info(info)
        _CACHE["shader"] = shader
        _CACHE["batch"] = batch_for_shader(
            shader, "TRI_STRIP", {"corner": [(-1, -1), (1, -1), (-1, 1), (1, 1)]}
        )
    return _CACHE["shader"], _CACHE["batch"]


def float_texture(texels: np.ndarray, width: int = TEXTURE_WIDTH):
    """An RGBA32F texture of `texels` [rows * width, 4] float32."""
    import gpu

    texels = np.ascontiguousarray(texels, dtype=np.float32)
    rows = len(texels) // width
    buffer = gpu.types.Buffer("FLOAT", texels.size, texels.reshape(-1))
    return gpu.types.GPUTexture((width, rows), format="RGBA32F", data=buffer)


def index_texture(order: np.ndarray, width: int = TEXTURE_WIDTH):
    """An R32F texture of the draw order [rows * width] (Blender's textures take float data only;
    indices are exact as floats up to 2^24, MAX_GAUSSIANS)."""
    import gpu

    order = np.ascontiguousarray(order, dtype=np.float32)
    buffer = gpu.types.Buffer("FLOAT", order.size, order)
    return gpu.types.GPUTexture((width, len(order) // width), format="R32F", data=buffer)


def draw(textures, order_texture, count: int, model_view, projection, viewport, linear: bool = False) -> None:
    """Draw `count` Gaussians in the order texture's order with the current blend state.
    model_view, projection: 4x4 (mathutils or nested sequences); viewport: (width, height);
    `linear`: write sRGB colours as linear, for targets that encode to sRGB afterwards."""
    from mathutils import Matrix

    shader, batch = shader_and_batch()
    shader.bind()
    carried = np.array(model_view, dtype=np.float64)
    carried[3] = (float(viewport[0]), float(viewport[1]), float(linear), 0.0)  # see VERTEX
    shader.uniform_float("u_model_view", Matrix(carried.tolist()))
    shader.uniform_float("u_projection", Matrix(np.asarray(projection, dtype=np.float64).tolist()))
    shader.uniform_sampler("order_tex", order_texture)
    for slot, texture in enumerate(textures):
        shader.uniform_sampler(f"tex{slot}", texture)
    batch.draw_instanced(shader, instance_count=int(count))
