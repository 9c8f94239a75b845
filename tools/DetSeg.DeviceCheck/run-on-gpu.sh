#!/usr/bin/env bash
# Runs the packed device check (see pack-for-gpu.sh), or the packed app DETSEG_GPU_APP, against the machine's
# PyTorch CUDA libtorch.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rt=/tmp/detseg-dotnet
[ -x "$rt/dotnet" ] || { mkdir -p "$rt" && tar -C "$rt" -xJf "$root/.devcheck/dotnet-runtime.tar.xz"; }
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
python3 -c 'import torch; print("host torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DOTNET_ROOT="$rt" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
export DETSEG_DATA="$root/.devcheck/data" DETSEG_CACHE=/tmp/detseg-cache
"$rt/dotnet" "$root/.devcheck/app/${DETSEG_GPU_APP:-DetSeg.DeviceCheck}.dll" "$@"
