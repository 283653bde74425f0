"""Official DiT state dict -> the diffusers DiTTransformer2DModel layout (docs/formats.md).

No transposes and no reordering: qkv is split in three along dim 0, the timestep and class embedders
are copied into every block's norm1.emb, and pos_embed is dropped (diffusers recomputes it).
"""

from collections import OrderedDict


def official_to_diffusers(sd):
    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    out = OrderedDict()
    out["pos_embed.proj.weight"] = sd["x_embedder.proj.weight"]
    out["pos_embed.proj.bias"] = sd["x_embedder.proj.bias"]
    for i in range(depth):
        b, d = "blocks.%d." % i, "transformer_blocks.%d." % i
        emb = d + "norm1.emb."
        for src, dst in (("t_embedder.mlp.0", "timestep_embedder.linear_1"), ("t_embedder.mlp.2", "timestep_embedder.linear_2")):
            out[emb + dst + ".weight"] = sd[src + ".weight"].clone()
            out[emb + dst + ".bias"] = sd[src + ".bias"].clone()
        out[emb + "class_embedder.embedding_table.weight"] = sd["y_embedder.embedding_table.weight"].clone()
        out[d + "norm1.linear.weight"] = sd[b + "adaLN_modulation.1.weight"]
        out[d + "norm1.linear.bias"] = sd[b + "adaLN_modulation.1.bias"]
        for kind in ("weight", "bias"):
            q, k, v = sd[b + "attn.qkv." + kind].chunk(3, dim=0)
            out[d + "attn1.to_q." + kind] = q.clone()
            out[d + "attn1.to_k." + kind] = k.clone()
            out[d + "attn1.to_v." + kind] = v.clone()
        for src, dst in (("attn.proj", "attn1.to_out.0"), ("mlp.fc1", "ff.net.0.proj"), ("mlp.fc2", "ff.net.2")):
            out[d + dst + ".weight"] = sd[b + src + ".weight"]
            out[d + dst + ".bias"] = sd[b + src + ".bias"]
    for src, dst in (("final_layer.adaLN_modulation.1", "proj_out_1"), ("final_layer.linear", "proj_out_2")):
        out[dst + ".weight"] = sd[src + ".weight"]
        out[dst + ".bias"] = sd[src + ".bias"]
    return out


def diffusers_config(sd, num_heads, num_classes, input_size):
    """transformer/config.json as the Hugging Face repo facebook/DiT-XL-2-256 has it."""
    D, C, p = sd["x_embedder.proj.weight"].shape[:3]
    depth = 0
    while "blocks.%d.attn.qkv.weight" % depth in sd:
        depth += 1
    cout = sd["final_layer.linear.weight"].shape[0] // (p * p)
    return OrderedDict([
        ("_class_name", "DiTTransformer2DModel"),
        ("activation_fn", "gelu-approximate"),
        ("attention_bias", True),
        ("attention_head_dim", int(D // num_heads)),
        ("dropout", 0.0),
        ("in_channels", int(C)),
        ("norm_elementwise_affine", False),
        ("norm_eps", 1e-05),
        ("norm_type", "ada_norm_zero"),
        ("num_attention_heads", int(num_heads)),
        ("num_embeds_ada_norm", int(num_classes)),
        ("num_layers", depth),
        ("out_channels", int(cout)),
        ("patch_size", int(p)),
        ("sample_size", int(input_size)),
        ("upcast_attention", False),
    ])
