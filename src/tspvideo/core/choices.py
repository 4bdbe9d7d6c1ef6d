"""The values the options take, by name, and the per-device defaults the command line shows.

Kept free of heavy imports (no torch, torchvision, PyAV or h5py) so that ``tspvideo`` builds its parser and
answers ``--help`` at once; the modules that act on a choice import its names from here, so each list is
written once.
"""

# Registered backbones (tspvideo.models.backbones checks its registry against this list when imported).
BACKBONES = ("c3d_tiny", "mvit_v2_s", "r2plus1d_18", "r2plus1d_34", "r3d_18", "s3d", "swin3d_b", "swin3d_s",
             "swin3d_t", "videomae_b", "videomae_b_ft", "videomae_l", "videomae_l_ft", "videomae_tiny", "vjepa2_tiny",
             "vjepa2_vitl")
HEAD_CHOICES = ("action", "region")  # the TSP model's heads
GVF_POOLS = ("max", "avg")  # how a global video feature pools a video's clip features
OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where the device computes it natively
PREPROCESS_ON_CHOICES = ("auto", "workers", "device")  # where frames become model input
DECODE_BACKENDS = ("pyav", "torchcodec")  # CPU decoders (NVDEC is chosen by --backend nvdec)
COLOUR_CONVERSIONS = ("decoder", "device")  # where YUV frames become RGB

# Clips per forward pass of an extraction by default. On a CPU, extracting with R(2+1)D-18 at batch 32 peaked at
# 4.3 GiB, at batch 8 at 1.7 GiB (benchmarks/RESULTS.md): 8 keeps a laptop safe; a GPU wants big batches.
GPU_BATCH_SIZE = 32
CPU_BATCH_SIZE = 8
