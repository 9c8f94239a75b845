// The notebook host: `run [notebooks...] [--profile smoke|cpu|gpu] [--out DIR]` executes notebooks headless,
// prints per-cell progress, and writes each executed .ipynb and an offline HTML report (atomically).
using DetSeg.Notebooks;

return await Cli.MainAsync(args, Console.Out, Console.Error);
