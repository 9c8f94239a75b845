using System.Reflection;

namespace DetSeg.Runtime;

/// <summary>
/// One HTML output of a notebook cell that is replaced in place when updated (progress bars, the training
/// display). Found by reflection, so the library needs no reference to the notebook packages.
/// </summary>
/// <remarks>
/// It displays through <c>KernelInvocationContext.Display</c>, whose <c>DisplayedValueProduced</c> and later
/// <c>DisplayedValueUpdated</c> events carry the same value id. The kernel helper <c>display(...)</c> of
/// .NET Interactive 1.0.0-beta.26120.1 does not: its updates name a fresh id, so VS Code, Jupyter and
/// recording hosts cannot tell which output they replace (this project's host kept the first frame of every bar).
/// </remarks>
public sealed class LiveOutput
{
    /// <summary>The HTML attribute every frame's root element carries, valued with <see cref="Id"/>: a
    /// recording that keeps each update as a new output (dotnet-repl) can still tell the frames of one output apart.</summary>
    public const string IdAttribute = "data-detseg-live";

    readonly object shown;
    readonly MethodInfo update;
    readonly Func<string, object> html;

    LiveOutput(string id, object shown, MethodInfo update, Func<string, object> html)
    {
        (Id, this.shown, this.update, this.html) = (id, shown, update, html);
    }

    /// <summary>This output's id, the value of <see cref="IdAttribute"/> in its frames.</summary>
    public string Id { get; }

    /// <summary>True inside a running cell of a .NET Interactive kernel, where <see cref="TryShow"/> shows an output.</summary>
    public static bool IsAvailable => Context() is not null;

    static (object Context, MethodInfo Display)? Context()
    {
        var interactive = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == "Microsoft.DotNet.Interactive");
        var contextType = interactive?.GetType("Microsoft.DotNet.Interactive.KernelInvocationContext");
        var context = contextType?.GetProperty("Current", BindingFlags.Public | BindingFlags.Static)?.GetValue(null);
        var display = interactive?.GetType("Microsoft.DotNet.Interactive.KernelInvocationContextExtensions")
            ?.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .FirstOrDefault(m => m.Name == "Display" && m.GetParameters() is { Length: 3 } p && p[0].ParameterType == contextType && p[2].ParameterType == typeof(string[]));
        return context is null || display is null ? null : (context, display);
    }

    /// <summary>
    /// Shows <paramref name="frame"/> (HTML; call <see cref="Frame"/> with this output's id to build it) as a new
    /// output of the running cell; null outside a .NET Interactive kernel or outside a running cell.
    /// </summary>
    public static LiveOutput? TryShow(Func<string, string> frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (Context() is not var (context, display)) return null;
        var assemblies = AppDomain.CurrentDomain.GetAssemblies();
        // HtmlString renders as raw HTML; a plain string with the text/html MIME type is the fallback.
        var htmlString = assemblies.Select(a => a.GetType("Microsoft.AspNetCore.Html.HtmlString")).FirstOrDefault(t => t is not null);
        Func<string, object> html = htmlString is null ? s => s : s => Activator.CreateInstance(htmlString, s)!;
        var id = Guid.NewGuid().ToString("N");
        var shown = display.Invoke(null, [context, html(frame(id)), new[] { "text/html" }]);
        var update = shown?.GetType().GetMethod("Update", [typeof(object)]);
        if (shown is null || update is null) return null;
        return new LiveOutput(id, shown, update, html);
    }

    /// <summary>Replaces the output with <paramref name="frameHtml"/> (built for <see cref="Id"/>).</summary>
    public void Update(string frameHtml) => update.Invoke(shown, [html(frameHtml)]);

    /// <summary>Wraps <paramref name="innerHtml"/> in the root element that names the output's id.</summary>
    public static string Frame(string id, string innerHtml, string cssClass = "detseg-live") =>
        $"<div class=\"{cssClass}\" {IdAttribute}=\"{id}\">{innerHtml}</div>";
}
