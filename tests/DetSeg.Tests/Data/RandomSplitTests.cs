using DetSeg.Data;

namespace DetSeg.Tests.Data;

public class RandomSplitTests
{
    sealed class Range(int n) : IDataset<int>
    {
        public int Count => n;
        public int this[int index] => index;
    }

    sealed class Wrapper(object inner) : IDatasetWrapper { public object Inner => inner; }

    [Fact]
    public void Split_Seed0_ReproducesPyTorchPennFudanSplit()
    {
        // Golden: ../shared/reference/baseline.json facts.pf_split_seed0 (torch.manual_seed(0); random_split(PennFudan(), [136, 17, 17])).
        var parts = RandomSplit.Split(new Range(170), [136, 17, 17], seed: 0);
        Assert.Equal(new[] { 24, 107, 79, 51, 117, 74, 33, 71, 153, 119 }, parts[0].Indices.Take(10));
        Assert.Equal(new[] { 1, 11, 66, 113, 149, 18, 168, 164, 120, 39, 40, 44, 60, 126, 162, 142, 103 }, parts[1].Indices);
        Assert.Equal(new[] { 148, 143, 116, 94, 124, 20, 3, 41, 169, 95, 102, 62, 64, 57, 156, 144, 86 }, parts[2].Indices);
        Assert.Equal(Enumerable.Range(0, 170), parts.SelectMany(p => p.Indices).Order());
        Assert.Equal(107, parts[0][1]);
    }

    [Fact]
    public void Split_RejectsSizesThatDoNotSumToLength()
    {
        var e = Assert.Throws<ArgumentException>(() => RandomSplit.Split(new Range(10), [5, 4], seed: 0));
        Assert.Contains("sum to 9", e.Message);
    }

    [Fact]
    public void Split_Fractions_HandsOutRemainderFromFirst()
    {
        var parts = RandomSplit.Split(new Range(10), [0.34, 0.33, 0.33], seed: 1);
        Assert.Equal(new[] { 4, 3, 3 }, parts.Select(p => p.Count));
    }

    [Fact]
    public void Subset_IndexOutOfRange_Throws()
    {
        var s = new Subset<int>(new Range(5), [4, 0]);
        Assert.Equal(4, s[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => s[2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Subset<int>(new Range(5), [5]));
    }

    [Fact]
    public void Find_WalksWrapperChainLikeTheCourseGetattr()
    {
        var range = new Range(5);
        var chain = new Wrapper(new Subset<int>(range, [1, 2]));
        Assert.Same(range, chain.Find<Range>());
        Assert.Null(chain.Find<string>());
        var e = Assert.Throws<InvalidOperationException>(() => chain.Require<string>());
        Assert.Contains("Wrapper -> Subset`1 -> Range", e.Message);
    }
}
