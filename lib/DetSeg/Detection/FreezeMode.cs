using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Detection;

/// <summary>Which parts of a <see cref="YOLOv3"/> stay fixed while fine-tuning (the course's <c>requires_grad_</c> options).</summary>
public enum FreezeMode
{
    /// <summary>Everything trains.</summary>
    None,
    /// <summary>The Darknet-53 feature extractor is frozen; routes and heads train.</summary>
    Backbone,
    /// <summary>Everything but the three heads is frozen.</summary>
    AllButHeads,
}

/// <summary>Freezing helpers for transfer learning.</summary>
public static class Transfer
{
    /// <summary>Sets <c>requires_grad</c> on the model's parameters per <paramref name="mode"/>; returns the trainable count.</summary>
    public static long Freeze(YOLOv3 model, FreezeMode mode)
    {
        Set(model, mode == FreezeMode.None);
        if (mode == FreezeMode.Backbone)
        {
            Set(model, true);
            Set(model.yolo.backbone, false);
        }
        else if (mode == FreezeMode.AllButHeads)
            foreach (var head in new[] { model.yolo.head1, model.yolo.head2, model.yolo.head3 }) Set(head, true);
        return model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
    }

    static void Set(nn.Module module, bool value)
    {
        foreach (var p in module.parameters()) p.requires_grad = value;
    }
}
