namespace DetSeg.Data;

/// <summary>
/// Penn-Fudan-style items that can be read already resized so the longer side is a given length, with PIL's nearest
/// rule (<see cref="PFSegmentation.ResizeLonger"/>), decoding only the rows and columns the resize keeps.
/// <see cref="PFSegmentation"/> reads through it, also under <see cref="Subset{T}"/>s.
/// </summary>
public interface IResizedItemSource
{
    /// <summary>Item <paramref name="index"/> resized so its longer side is <paramref name="longerSide"/>: the same
    /// tensors as <see cref="PFSegmentation.ResizeLonger"/> on the item's image and mask.</summary>
    /// <param name="index">The item.</param>
    /// <param name="longerSide">The longer side after resizing.</param>
    /// <param name="width">The item's width before resizing.</param>
    PennFudanItem ReadResized(int index, int longerSide, out int width);
}
