"""PyTorch rows that ../shared/reference/bench.py lacks, measured with its own protocol (bench.timeit).

Run with Debian's interpreter (python3-torch): `/usr/bin/python3 bench/reference_extra.py [--out FILE]`.
Prints one JSON object of `<row>_ms` medians plus `details` (as bench.py), for bench/compare.

Rows:
- vit_train_step_ms_b128: one AdamW step of the MNIST vision transformer DetSeg's notebook 04 trains
  (dim 64, depth 6, 4 heads, MLP 256, patch 7, 28x28 digits, 17 tokens), built from the course's
  AttentionBlock (seed_ref.AttentionBlock, pre-LN) the way DetSeg's VisionTransformer is
  (the UvA tutorial ViT the course block comes from), batch 128 of random digits.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F


def reference_dir():
    """../shared/reference beside the clone (the layout every DetSeg tool assumes), or $DETSEG_REFERENCE."""
    env = os.environ.get('DETSEG_REFERENCE')
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parents[1] / '..' / 'shared' / 'reference').resolve()


REF = reference_dir()
if not (REF / 'seed_ref.py').is_file():
    sys.exit(f'reference_extra.py: seed_ref.py not found in {REF} (set DETSEG_REFERENCE)')
sys.path.insert(0, str(REF))
import seed_ref as S  # noqa: E402
import bench as B  # noqa: E402  (sets 2 threads; its timeit is the protocol)


def img_to_patch(x, patch_size):
    """[B x C x H x W] -> [B x N x C*p*p], patches row by row (DetSeg's Patches.ImgToPatch)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch_size, patch_size, w // patch_size, patch_size)
    return x.permute(0, 2, 4, 1, 3, 5).flatten(1, 2).flatten(2, 4)


class VisionTransformer(nn.Module):
    def __init__(self, embed_dim=64, hidden_dim=256, num_channels=1, num_heads=4, num_layers=6,
                 num_classes=10, patch_size=7, num_patches=16, dropout=0.0):
        super().__init__()
        self.patch_size = patch_size
        self.input_layer = nn.Linear(num_channels * patch_size ** 2, embed_dim)
        self.transformer = nn.Sequential(*[S.AttentionBlock(embed_dim, hidden_dim, num_heads, dropout)
                                           for _ in range(num_layers)])
        self.mlp_head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        self.dropout = nn.Dropout(dropout)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.pos_embedding = nn.Parameter(torch.randn(1, 1 + num_patches, embed_dim) * 0.02)

    def forward(self, x):
        x = self.input_layer(img_to_patch(x, self.patch_size))          # [B x N x E]
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        x = self.dropout(torch.cat([cls, x], dim=1) + self.pos_embedding)  # [B x 1+N x E]
        x = self.transformer(x.transpose(0, 1))                          # [L x B x E]
        return self.mlp_head(x[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', help='also write the JSON here')
    args = ap.parse_args()
    out, details = {}, {}

    torch.manual_seed(0)
    vit = VisionTransformer()
    opt = torch.optim.AdamW(vit.parameters(), lr=1e-3)
    x = torch.randn(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    vit.train(True)

    def vit_step():
        opt.zero_grad()
        loss = F.cross_entropy(vit(x), y)
        loss.backward()
        opt.step()
    details['vit_train_step_b128'] = B.timeit(vit_step, reps=max(B.REPS, 20))
    out['vit_train_step_ms_b128'] = details['vit_train_step_b128']['median']
    out['vit_params'] = sum(p.numel() for p in vit.parameters())
    B.log('vit train', out['vit_train_step_ms_b128'])

    out['contention'] = dict(B.CONTENTION, foreign_max=B.FOREIGN_MAX)
    out['details'] = details
    text = json.dumps(out)
    if args.out:
        Path(args.out).write_text(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
