#!/usr/bin/env bash
# Packs the device check (or another app: pass its project folders, e.g. bench/DetSeg.Bench) for a GPU
# machine that has PyTorch (with CUDA) but no .NET SDK and no network: each published app without libtorch
# (the machine's own CUDA libtorch is used through LD_LIBRARY_PATH), a .NET runtime, and the MNIST test files.
# Output: <repo>/.devcheck (git-ignored; carry it).
# Run there:  bash tools/DetSeg.DeviceCheck/run-on-gpu.sh [args]
#        or:  DETSEG_GPU_APP=DetSeg.Bench bash tools/DetSeg.DeviceCheck/run-on-gpu.sh detection-train
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.devcheck"
rm -rf "$out" && mkdir -p "$out/data/MNIST/raw"
projects=("$@"); [ ${#projects[@]} -eq 0 ] && projects=("tools/DetSeg.DeviceCheck")
for p in "${projects[@]}"; do
  dotnet publish "$root/$p" -c Release -o "$out/app" -v q -nologo
done
# Keep libLibTorchSharp.so (the binding); drop libtorch itself and test/python natives.
( cd "$out/app" && rm -f libtorch*.so libc10*.so libgomp*.so* libshm.so libaoti*.so libbackend_with_compiler.so \
    libjitbackend_test.so libnnapi_backend.so libtorchbind_test.so *.pdb )
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
fx=$(ls "$dotnet_root/shared/Microsoft.NETCore.App" | sort -V | tail -n 1)
fxr=$(ls "$dotnet_root/host/fxr" | sort -V | tail -n 1)
tar -C "$dotnet_root" -cJf "$out/dotnet-runtime.tar.xz" dotnet "shared/Microsoft.NETCore.App/$fx" "host/fxr/$fxr"
data="${DETSEG_DATA:-$root/../shared/data}"
cp "$data"/MNIST/raw/t10k-*.gz "$out/data/MNIST/raw/" 2>/dev/null || echo "no MNIST found: the clutter check will be skipped"
du -sh "$out"
