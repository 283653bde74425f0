// Compute precision of the GEMM operands (and of the attention matmuls on tensor cores).
//   Fp32  weights and activations in fp32, SIMT FFMA (the reference precision; CPU default)
//   Bf16  weights stored on the device in bf16, operands rounded to bf16, fp32 accumulation (CUDA default)
//   Fp16  as Bf16 with IEEE half operands (more mantissa, less range)
// Residual stream, LayerNorm statistics, softmax and the sampler stay fp32 in every precision.
namespace BlockDance.Kernels;

public enum Precision { Fp32, Bf16, Fp16 }
