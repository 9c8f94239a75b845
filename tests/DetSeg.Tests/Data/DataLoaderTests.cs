using DetSeg.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Data;

public class DataLoaderTests
{
    /// <summary>Item i: [value tensor [2] = (i, -i) float, label scalar int64 i, a variable-length int64 list of i+1 ones].</summary>
    sealed class Toy(int n, int failAt = -1) : IDataset<Tensor[]>
    {
        public int Calls;
        public int Count => n;
        public Tensor[] this[int index]
        {
            get
            {
                Interlocked.Increment(ref Calls);
                if (index == failAt) throw new InvalidDataException($"item {index} is broken");
                return [tensor(new float[] { index, -index }), tensor((long)index), ones(index % 3 + 1, ScalarType.Int64)];
            }
        }
    }

    static readonly torch.Device Cpu = new(DeviceType.CPU);

    [Fact]
    public void Batches_StackFieldsAlongNewDim0_AndPadVariableLength()
    {
        using var loader = new DataLoader(new Toy(5), batchSize: 3, device: Cpu, padValues: [0, 0, -1]);
        var seen = new List<long>();
        int batches = 0;
        foreach (var b in loader)
        {
            batches++;
            Assert.Equal(new long[] { b[1].shape[0], 2 }, b[0].shape);
            Assert.Equal(ScalarType.Int64, b[1].dtype);
            seen.AddRange(b[1].data<long>());
            if (batches == 1)
            {
                // items 0,1,2 have 1,2,3 ones -> padded to 3 with -1
                Assert.Equal(new long[] { 1, -1, -1, 1, 1, -1, 1, 1, 1 }, b[2].data<long>().ToArray());
                Assert.Equal(new float[] { 0, 0, 1, -1, 2, -2 }, b[0].data<float>().ToArray());
            }
        }
        Assert.Equal(2, batches);
        Assert.Equal(2, loader.Count);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4 }, seen);
    }

    [Fact]
    public void DropLast_DropsTheSmallBatch()
    {
        using var loader = new DataLoader(new Toy(5), batchSize: 2, dropLast: true, device: Cpu);
        Assert.Equal(2, loader.Count);
        Assert.Equal(2, loader.Count());
    }

    [Fact]
    public void Shuffle_SameSeedSameOrders_NewOrderEachEpoch_CoversAll()
    {
        List<long> Epoch(DataLoader l) => l.SelectMany(b => b[1].data<long>().ToArray()).ToList();
        using var a = new DataLoader(new Toy(20), batchSize: 4, shuffle: true, seed: 7, device: Cpu);
        using var b = new DataLoader(new Toy(20), batchSize: 4, shuffle: true, seed: 7, device: Cpu, numWorkers: 0);
        var a1 = Epoch(a); var a2 = Epoch(a);
        Assert.Equal(a1, Epoch(b));
        Assert.Equal(a2, Epoch(b));
        Assert.NotEqual(a1, a2);
        Assert.NotEqual(Enumerable.Range(0, 20).Select(i => (long)i), a1);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), a1.Order());
    }

    [Fact]
    public void YieldedBatches_AreDisposedWhenTheNextIsRequested()
    {
        using var loader = new DataLoader(new Toy(6), batchSize: 2, device: Cpu, numWorkers: 2);
        var kept = new List<Tensor>();
        foreach (var b in loader) kept.Add(b[0]);
        Assert.All(kept, t => Assert.True(t.IsInvalid));
    }

    [Fact]
    public void AbandonedEpoch_DisposesPrefetchedBatches_AndDatasetErrorsSurface()
    {
        var toy = new Toy(40);
        using (var loader = new DataLoader(toy, batchSize: 2, device: Cpu, numWorkers: 2, prefetch: 2))
        {
            foreach (var _ in loader) break;
        }
        Assert.True(toy.Calls < 40, $"prefetch should be bounded, fetched {toy.Calls}");

        using var failing = new DataLoader(new Toy(6, failAt: 3), batchSize: 2, device: Cpu);
        var e = Assert.Throws<InvalidDataException>(() => failing.Count());
        Assert.Contains("item 3", e.Message);
    }

    sealed class Recorder(int n) : IDataset<Tensor[]>
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<int> Order = new();
        public int Count => n;
        public Tensor[] this[int index] { get { Order.Enqueue(index); Thread.Sleep(index % 3); return [tensor((long)index)]; } }
    }

    [Fact]
    public void OneWorker_BuildsBatchesStrictlyInOrder()
    {
        // Random augmentation inside a dataset draws in fetch order: with one worker that order must be the batch order.
        var rec = new Recorder(40);
        using (var loader = new DataLoader(rec, batchSize: 1, device: Cpu, numWorkers: 1, prefetch: 4))
            Assert.Equal(40, loader.Count());
        Assert.Equal(Enumerable.Range(0, 40), rec.Order);
    }

    [Fact]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentException>(() => new DataLoader(new Toy(2), batchSize: 0));
        Assert.Throws<ArgumentException>(() => new DataLoader(new Toy(2), numWorkers: -1));
        var e = Assert.Throws<ArgumentException>(() => new DataLoader(new Toy(2), numSamples: 3));
        Assert.Equal("numSamples", e.ParamName);
        Assert.Throws<ArgumentException>(() => new DataLoader(new Toy(2), numSamples: 0));
    }

    [Fact]
    public void Workers_BuildWithOneIntraOpThread_LikePyTorchWorkers_AndTheCallerKeepsItsThreads()
    {
        var seen = new System.Collections.Concurrent.ConcurrentBag<int>();
        var probe = new Probe(8, () => seen.Add(torch.get_num_threads()));
        int before = torch.get_num_threads();
        using var l = new DataLoader(probe, batchSize: 2, device: Cpu, numWorkers: 1);
        Assert.Equal(4, Enumerable.Count(l));
        Assert.Equal(8, seen.Count);
        Assert.All(seen, n => Assert.Equal(1, n));
        Assert.Equal(before, torch.get_num_threads());
        // on the calling thread (no workers) nothing changes
        seen.Clear();
        using var inline = new DataLoader(probe, batchSize: 2, device: Cpu, numWorkers: 0);
        Assert.Equal(4, Enumerable.Count(inline));
        Assert.All(seen, n => Assert.Equal(before, n));
    }

    sealed class Probe(int n, Action onItem) : IDataset<Tensor[]>
    {
        public int Count => n;
        public Tensor[] this[int index] { get { onItem(); return [tensor((long)index)]; } }
    }

    [Fact]
    public void NumSamples_EachEpochDrawsDistinctItemsFromThePool_NewOnesEachEpoch()
    {
        List<long> Epoch(DataLoader l) => l.SelectMany(b => b[1].data<long>().ToArray()).ToList();
        using var l = new DataLoader(new Toy(100), batchSize: 4, shuffle: true, dropLast: true, seed: 3, device: Cpu, numSamples: 10);
        Assert.Equal(2, l.Count);                                    // 10 samples, batches of 4, last 2 dropped
        var e1 = Epoch(l); var e2 = Epoch(l);
        Assert.Equal(8, e1.Count);
        Assert.Equal(e1.Count, e1.Distinct().Count());               // without replacement within an epoch
        Assert.All(e1.Concat(e2), i => Assert.InRange(i, 0, 99));
        Assert.NotEqual(e1.Order(), e2.Order());                     // another subset of the pool, not a reordering
        // without shuffling: the first numSamples items in order
        using var plain = new DataLoader(new Toy(100), batchSize: 4, device: Cpu, numSamples: 6);
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5 }, Epoch(plain));
    }

    [Fact]
    public void Collate_RankMismatch_NamesTheField()
    {
        var e = Assert.Throws<ArgumentException>(() => Collate.Stack([[zeros(2)], [zeros(2, 2)]]));
        Assert.Contains("Field 0", e.Message);
    }
}
