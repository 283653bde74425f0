"""PixArt-alpha fixtures (tests/fixtures/pixart_*), byte for byte from fixed seeds:

  pixart_tiny/            diffusers-layout folder: transformer/ (config.json + weights, 512-style: no micro-conditions),
                          vae/ (the tiny VAE of vae_tiny.weights.safetensors), scheduler/, model_index.json
  pixart_tiny_ms/         the same with micro-conditions (use_additional_conditions, interpolation_scale 2)
  pixart_tiny.ref.safetensors    per-block outputs and one forward with masks and a [cond; uncond] batch, both models
  pixart_traj.safetensors        a DPM-Solver++ (2M) trajectory, 20 steps, CFG 4.5, with the prompt file's names

Run: /usr/bin/python3 tools/reference/make_pixart_fixtures.py   (after make_fixtures.py, which writes the tiny VAE)
"""

import json
import os
import shutil
from collections import OrderedDict

import torch

from dit_reference import load_safetensors, save_safetensors
from pixart_reference import PixArt, dpm_solver_2m

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures"))
SEED = 20250301 + 1500

HEADS, HD, DEPTH, PATCH, CIN, COUT, SAMPLE, CAP, L = 2, 24, 2, 2, 4, 8, 8, 32, 8
D = HEADS * HD


SCHEDULER = OrderedDict([("_class_name", "DPMSolverMultistepScheduler"), ("algorithm_type", "dpmsolver++"),
                         ("beta_end", 0.02), ("beta_schedule", "linear"), ("beta_start", 0.0001),
                         ("lower_order_final", True), ("num_train_timesteps", 1000), ("prediction_type", "epsilon"),
                         ("solver_order", 2), ("solver_type", "midpoint"), ("timestep_spacing", "linspace")])
MODEL_INDEX = OrderedDict([("_class_name", "PixArtAlphaPipeline"), ("scheduler", ["diffusers", "DPMSolverMultistepScheduler"]),
                           ("transformer", ["diffusers", "PixArtTransformer2DModel"]), ("vae", ["diffusers", "AutoencoderKL"])])


def gen(offset):
    g = torch.Generator()
    g.manual_seed(SEED + offset)
    return g


def config(micro):
    c = OrderedDict([
        ("_class_name", "PixArtTransformer2DModel"),
        ("activation_fn", "gelu-approximate"),
        ("attention_bias", True),
        ("attention_head_dim", HD),
        ("caption_channels", CAP),
        ("cross_attention_dim", D),
        ("in_channels", CIN),
        ("norm_elementwise_affine", False),
        ("norm_eps", 1e-6),
        ("norm_type", "ada_norm_single"),
        ("num_attention_heads", HEADS),
        ("num_embeds_ada_norm", 1000),
        ("num_layers", DEPTH),
        ("out_channels", COUT),
        ("patch_size", PATCH),
        ("sample_size", SAMPLE),
    ])
    if micro:
        c["use_additional_conditions"] = True
        c["interpolation_scale"] = 2
    return c


def weights(g, micro):
    sd = OrderedDict()

    def lin(name, o, i, gain=1.0):
        sd[name + ".weight"] = torch.randn(o, i, generator=g) * (gain / i ** 0.5)
        sd[name + ".bias"] = torch.randn(o, generator=g) * 0.1

    sd["pos_embed.proj.weight"] = torch.randn(D, CIN, PATCH, PATCH, generator=g) * (1 / (CIN * PATCH * PATCH) ** 0.5)
    sd["pos_embed.proj.bias"] = torch.randn(D, generator=g) * 0.1
    e = "adaln_single.emb."
    lin(e + "timestep_embedder.linear_1", D, 256)
    lin(e + "timestep_embedder.linear_2", D, D)
    if micro:
        for name in ("resolution_embedder", "aspect_ratio_embedder"):
            lin(e + name + ".linear_1", D // 3, 256)
            lin(e + name + ".linear_2", D // 3, D // 3)
    lin("adaln_single.linear", 6 * D, D, 0.5)
    lin("caption_projection.linear_1", D, CAP)
    lin("caption_projection.linear_2", D, D)
    for i in range(DEPTH):
        b = "transformer_blocks.%d." % i
        sd[b + "scale_shift_table"] = torch.randn(6, D, generator=g) * 0.5
        for a in ("attn1", "attn2"):
            for p in ("to_q", "to_k", "to_v", "to_out.0"):
                lin(b + a + "." + p, D, D)
        lin(b + "ff.net.0.proj", 4 * D, D)
        lin(b + "ff.net.2", D, 4 * D, 0.5)
    sd["scale_shift_table"] = torch.randn(2, D, generator=g) * 0.5
    lin("proj_out", PATCH * PATCH * COUT, D)
    return sd


def write_folder(name, micro, g):
    root = os.path.join(OUT, name)
    sd = weights(g, micro)
    save_safetensors(os.path.join(root, "transformer", "diffusion_pytorch_model.safetensors"), sd)
    with open(os.path.join(root, "transformer", "config.json"), "w") as f:
        json.dump(config(micro), f, indent=2)
    write_vae(root) if not micro else None
    os.makedirs(os.path.join(root, "scheduler"), exist_ok=True)
    with open(os.path.join(root, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER, f, indent=2)
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(MODEL_INDEX, f, indent=2)
    sd, _ = load_safetensors(os.path.join(root, "transformer", "diffusion_pytorch_model.safetensors"))
    return PixArt(sd, config(micro))


def write_vae(root):
    """The tiny VAE (written by make_fixtures.py) as the folder's vae/."""
    os.makedirs(os.path.join(root, "vae"), exist_ok=True)
    shutil.copyfile(os.path.join(OUT, "vae_tiny.weights.safetensors"), os.path.join(root, "vae", "diffusion_pytorch_model.safetensors"))
    with open(os.path.join(root, "vae", "config.json"), "w") as f:
        json.dump(OrderedDict([("_class_name", "AutoencoderKL"), ("latent_channels", 4), ("norm_num_groups", 4),
                               ("block_out_channels", [4, 8, 16, 16]), ("layers_per_block", 2),
                               ("scaling_factor", 0.18215)]), f, indent=2)


def masks():
    m = torch.zeros(2, L)
    m[0, :5] = 1   # a prompt of 5 tokens (incl. EOS)
    m[1, :1] = 1   # the empty negative prompt: EOS only
    return m


def main():
    g = gen(0)
    ref = OrderedDict()
    for prefix, name, micro in (("", "pixart_tiny", False), ("ms_", "pixart_tiny_ms", True)):
        model = write_folder(name, micro, g)
        x = torch.randn(2, CIN, SAMPLE, SAMPLE, generator=g)
        t = torch.tensor([999.0, 999.0]) if not micro else torch.tensor([500.0, 500.0])
        y = torch.randn(2, L, CAP, generator=g)
        m = masks()
        res = torch.tensor([[SAMPLE * 8.0, SAMPLE * 8.0]] * 2)
        ar = torch.tensor([[1.0]] * 2)
        trace = OrderedDict()
        with torch.no_grad():
            out = model.forward(x, t, y, m, res, ar, trace)
        ref[prefix + "x"], ref[prefix + "t"], ref[prefix + "y"], ref[prefix + "mask"] = x, t, y, m
        for k, v in trace.items():
            ref[prefix + k] = v
        ref[prefix + "out"] = out
        print("[%s] out rms %.3f, block rms %s" % (name, float(out.pow(2).mean().sqrt()),
                                                   [round(float(v.pow(2).mean().sqrt()), 2) for v in trace.values()]))
    save_safetensors(os.path.join(OUT, "pixart_tiny.ref.safetensors"), ref, {
        "models": "pixart_tiny (prefix none), pixart_tiny_ms (prefix ms_: resolution (64, 64), aspect ratio 1)",
        "layout": "rows [prompt; negative]; mask 1 = real token; tokens = patch embedding + position table; blockI = output of block I"})

    # DPM-Solver++ 2M trajectory on pixart_tiny, CFG 4.5 on the 4 eps channels, 20 steps.
    sd, _ = load_safetensors(os.path.join(OUT, "pixart_tiny", "transformer", "diffusion_pytorch_model.safetensors"))
    model = PixArt(sd, config(False))
    y = torch.randn(2, L, CAP, generator=g)
    m = masks()
    x = torch.randn(1, CIN, SAMPLE, SAMPLE, generator=g)

    def eps_fn(xx, t):
        with torch.no_grad():
            o = model.forward(torch.cat([xx, xx]), torch.tensor([float(t)] * 2), y, m)
        e = o[:, :CIN]
        return e[1:2] + 4.5 * (e[0:1] - e[1:2])

    traj = dpm_solver_2m(eps_fn, x, 20)
    save_safetensors(os.path.join(OUT, "pixart_traj.safetensors"), OrderedDict([
        ("prompt_embeds", y[0:1]), ("prompt_attention_mask", m[0:1].long()),
        ("negative_prompt_embeds", y[1:2]), ("negative_prompt_attention_mask", m[1:2].long()),
        ("noise", x), ("trajectory", torch.stack(traj)),
    ]), {"model": "pixart_tiny", "sampler": "DPM-Solver++ 2M, 20 steps, linspace timesteps, lower-order final, cfg 4.5 on 4 channels",
         "trajectory": "(21, 1, 4, 8, 8): x_T then x after each step"})
    print("[traj] x0 rms %.3f" % float(traj[-1].pow(2).mean().sqrt()))


if __name__ == "__main__":
    main()
