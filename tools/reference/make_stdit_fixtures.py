"""Open-Sora 1.0 (STDiT) fixtures (tests/fixtures/stdit_tiny*), byte for byte from fixed seeds:

  stdit_tiny/config.json + model.safetensors   a tiny STDiT (official constructor arguments; official keys,
                                               no pos_embed buffers)
  stdit_tiny.pth                 the same weights as torch.save(state_dict) WITH the pos_embed / pos_embed_temporal
                                 buffers (as STDiT.state_dict() holds them)
  stdit_tiny_ema.pth             a training checkpoint {"ema": the weights, "model": other weights, "step": int}
  stdit_tiny.ref.safetensors     x, t, y, mask, the tokens, every block's output and the output of one forward
                                 of a batch of 2 rows with different timesteps and caption masks
  stdit_traj.safetensors         IDDPM (K = 10, learned-range variance, given step noise) and DDIM (eta 0,
                                 K = 10) trajectories with CFG 7.0 [cond, uncond], the null caption y_embedding

Run: /usr/bin/python3 tools/reference/make_stdit_fixtures.py
"""

import json
import os
from collections import OrderedDict

import torch

from dit_reference import SpacedDiffusion, load_safetensors, save_safetensors, space_timesteps
from stdit_reference import STDiT, spatial_table, temporal_table

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))
SEED = 20250301 + 2300

HEADS, HD, DEPTH, CIN, CAP, L = 2, 12, 3, 4, 16, 6
D = HEADS * HD
FRAMES, SIZE = 3, 8
CONFIG = OrderedDict([
    ("input_size", [FRAMES, SIZE, SIZE]), ("in_channels", CIN), ("patch_size", [1, 2, 2]), ("hidden_size", D),
    ("depth", DEPTH), ("num_heads", HEADS), ("mlp_ratio", 4.0), ("pred_sigma", True), ("caption_channels", CAP),
    ("model_max_length", L), ("space_scale", 0.5), ("time_scale", 2.0 / 3.0),
])
STEPS, CFG = 10, 7.0


def gen(offset):
    g = torch.Generator()
    g.manual_seed(SEED + offset)
    return g


def weights(g):
    sd = OrderedDict()

    def lin(name, o, i, gain=1.0):
        sd[name + ".weight"] = torch.randn(o, i, generator=g) * (gain / i ** 0.5)
        sd[name + ".bias"] = torch.randn(o, generator=g) * 0.1

    sd["x_embedder.proj.weight"] = torch.randn(D, CIN, 1, 2, 2, generator=g) * 0.5
    sd["x_embedder.proj.bias"] = torch.randn(D, generator=g) * 0.1
    lin("t_embedder.mlp.0", D, 256)
    lin("t_embedder.mlp.2", D, D)
    lin("t_block.1", 6 * D, D, 0.5)
    sd["y_embedder.y_embedding"] = torch.randn(L, CAP, generator=g)
    lin("y_embedder.y_proj.fc1", D, CAP)
    lin("y_embedder.y_proj.fc2", D, D)
    for i in range(DEPTH):
        b = "blocks.%d." % i
        sd[b + "scale_shift_table"] = torch.randn(6, D, generator=g) * 0.5
        lin(b + "attn.qkv", 3 * D, D)
        lin(b + "attn.proj", D, D)
        lin(b + "attn_temp.qkv", 3 * D, D)
        lin(b + "attn_temp.proj", D, D)
        lin(b + "cross_attn.q_linear", D, D)
        lin(b + "cross_attn.kv_linear", 2 * D, D)
        lin(b + "cross_attn.proj", D, D)
        lin(b + "mlp.fc1", 4 * D, D)
        lin(b + "mlp.fc2", D, 4 * D, 0.5)
    sd["final_layer.scale_shift_table"] = torch.randn(2, D, generator=g) * 0.5
    lin("final_layer.linear", 4 * 2 * CIN, D)
    return sd


def with_buffers(sd):
    """The state dict as STDiT.state_dict() returns it: the two sin-cos buffers first, then the parameters."""
    out = OrderedDict()
    out["pos_embed"] = torch.from_numpy(spatial_table(D, SIZE // 2, CONFIG["space_scale"])).float()[None]
    out["pos_embed_temporal"] = torch.from_numpy(temporal_table(D, FRAMES, CONFIG["time_scale"])).float()[None]
    out.update(sd)
    out._metadata = OrderedDict([("", {"version": 1})])
    return out


def write_models(g):
    sd = weights(g)
    root = os.path.join(OUT, "stdit_tiny")
    save_safetensors(os.path.join(root, "model.safetensors"), sd, {"format": "pt"})
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    torch.save(with_buffers(sd), os.path.join(OUT, "stdit_tiny.pth"))
    other = OrderedDict((k, v if not k.startswith("blocks.0.") else -v) for k, v in sd.items())
    torch.save({"model": other, "ema": with_buffers(sd), "step": 1234}, os.path.join(OUT, "stdit_tiny_ema.pth"))
    sd, _ = load_safetensors(os.path.join(root, "model.safetensors"))
    return STDiT(sd, CONFIG), sd


def masks():
    m = torch.zeros(2, L)
    m[0, :4] = 1
    m[1, :2] = 1
    return m


def trajectories(model, sd, g):
    y = torch.randn(1, L, CAP, generator=g)
    m = torch.zeros(1, L)
    m[0, :3] = 1
    ys = torch.cat([y, sd["y_embedder.y_embedding"][None]])     # [cond; null caption]
    ms = m.repeat(2, 1)                                          # the prompt's mask on both halves
    x = torch.randn(1, CIN, FRAMES, SIZE, SIZE, generator=g)
    z = torch.randn(STEPS, 1, CIN, FRAMES, SIZE, SIZE, generator=g)
    diff = SpacedDiffusion(space_timesteps(1000, str(STEPS)))

    def guided(xx, i):
        t = torch.tensor([float(diff.timestep_map[i])] * 2)
        with torch.no_grad():
            return model.forward_with_cfg(torch.cat([xx, xx]), t, ys, ms, CFG)[:1]

    out = OrderedDict([("prompt_embeds", y), ("prompt_attention_mask", m.long()), ("noise", x), ("step_noise", z)])
    for name in ("iddpm", "ddim"):
        cur, traj = x.clone(), [x.clone()]
        for k, i in enumerate(reversed(range(STEPS))):
            mo = guided(cur, i)
            cur = diff.ddpm_step(cur, i, mo, z[k]) if name == "iddpm" else diff.ddim_step(cur, i, mo)
            traj.append(cur.clone())
        out[name] = torch.stack(traj)
        print("[%s] x0 rms %.3f" % (name, float(cur.pow(2).mean().sqrt())))
    save_safetensors(os.path.join(OUT, "stdit_traj.safetensors"), out, {
        "model": "stdit_tiny", "steps": str(STEPS), "cfg": str(CFG),
        "layout": "iddpm / ddim (K+1, 1, 4, T, H, W): x_T then x after each step; step_noise[k] is the noise of step k "
                  "(k = 0 first, the last unused); uncond caption = y_embedding with the prompt's mask"})


def main():
    g = gen(0)
    model, sd = write_models(g)
    x = torch.randn(2, CIN, FRAMES, SIZE, SIZE, generator=g)
    t = torch.tensor([999.0, 500.0])
    y = torch.randn(2, L, CAP, generator=g)
    m = masks()
    trace = OrderedDict()
    with torch.no_grad():
        out = model.forward(x, t, y, m, trace)
    ref = OrderedDict([("x", x), ("t", t), ("y", y), ("mask", m)])
    ref.update(trace)
    ref["out"] = out
    save_safetensors(os.path.join(OUT, "stdit_tiny.ref.safetensors"), ref, {
        "model": "stdit_tiny", "layout": "tokens (B, T*S, D) after patch embedding + spatial table; blockI = output of block I; "
                                         "out (B, 8, T, H, W)"})
    print("[ref] out rms %.3f, block rms %s" % (float(out.pow(2).mean().sqrt()),
                                                [round(float(v.pow(2).mean().sqrt()), 2) for v in trace.values()]))
    trajectories(model, sd, g)


if __name__ == "__main__":
    main()
