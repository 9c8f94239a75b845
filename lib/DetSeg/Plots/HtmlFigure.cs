using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Html;

namespace DetSeg.Plots;

/// <summary>
/// What the builders actually return: a <see cref="Figure"/> that .NET Interactive formats as text/html,
/// because it implements <see cref="IHtmlContent"/> (Microsoft.AspNetCore.Html.Abstractions 2.2.0, the identity
/// the stock kernel binds). Internal on purpose: the public type free of that interface keeps the stock
/// kernel from warning CS1701 about the assembly version when notebook code names <see cref="Figure"/>.
/// </summary>
sealed class HtmlFigure(JsonArray data, JsonObject layout) : Figure(data, layout), IHtmlContent
{
    public void WriteTo(TextWriter writer, HtmlEncoder encoder) => writer.Write(ToHtml());
}
