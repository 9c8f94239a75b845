using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;
using static TorchSharp.torch;

namespace DetSeg.Tests.Runtime;

/// <summary>One place in compiled code that makes a <see cref="Scalar"/> nothing holds during the native call.</summary>
/// <param name="Method">The source-level method: lambdas, local functions and async/iterator bodies count as their host's.</param>
/// <param name="Offset">IL offset of the call in the compiled body.</param>
/// <param name="Call">What is called: the conversion itself, or a TorchSharp method that makes one inside.</param>
/// <param name="MakesUnsafeModule">The call creates a TorchSharp module whose forward makes temporaries on every call.</param>
public sealed record ScalarTemporary(string Method, int Offset, string Call, bool MakesUnsafeModule = false);

/// <summary>
/// Reads compiled IL (method bodies through reflection) to find temporary <see cref="Scalar"/>s: TorchSharp 0.107
/// frees a Scalar in its finalizer and keeps no reference to it during the native call it is passed to, so a
/// Scalar nothing else holds can be freed mid-call by a GC another thread starts (TORCHSHARP-NOTES.md).
/// </summary>
/// <remarks>
/// A Scalar is made by <c>Scalar.op_Implicit</c> (every C# number passed where a Scalar is expected) or a
/// <c>ToScalar</c> extension method. It is held when the result goes straight into a field, or into a local that
/// the method later disposes (<c>using var</c>) or passes to <c>GC.KeepAlive</c>; anything else is a temporary.
/// TorchSharp's own methods are read the same way, and a TorchSharp method that makes a temporary, or calls one
/// that does, is unsafe to call (<c>add(Tensor)</c>'s hidden <c>alpha = 1</c>, <c>functional.leaky_relu(x, 0.1)</c>).
/// Module forwards are virtual and not followed: <see cref="UnsafeModuleTypes"/> lists TorchSharp modules whose
/// <c>forward</c> is unsafe, and creating one (constructor or factory) counts as a call to an unsafe method.
/// </remarks>
public static class ScalarIlScan
{
    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    sealed record Instr(int Offset, OpCode Op, long Operand);

    static List<Instr> Decode(byte[] il)
    {
        var list = new List<Instr>();
        int i = 0;
        while (i < il.Length)
        {
            int at = i;
            short v = il[i++];
            if (v == 0xFE) v = (short)(0xFE00 | il[i++]);
            var op = OpCodesByValue[v];
            long operand = 0;
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget: case OperandType.ShortInlineI: case OperandType.ShortInlineVar:
                    operand = il[i]; i += 1; break;
                case OperandType.InlineVar:
                    operand = BitConverter.ToUInt16(il, i); i += 2; break;
                case OperandType.InlineI8: case OperandType.InlineR:
                    operand = BitConverter.ToInt64(il, i); i += 8; break;
                case OperandType.InlineSwitch:
                    int n = BitConverter.ToInt32(il, i); i += 4 + 4 * n; break;
                default: // 4-byte operands: tokens, branch targets, int32, float32
                    operand = BitConverter.ToInt32(il, i); i += 4; break;
            }
            list.Add(new Instr(at, op, operand));
        }
        return list;
    }

    static int? StoredLocal(Instr x) => x.Op.Value switch
    {
        0x0A => 0, 0x0B => 1, 0x0C => 2, 0x0D => 3,                              // stloc.0..3
        0x13 => (int)x.Operand, unchecked((short)0xFE0E) => (int)x.Operand,      // stloc.s, stloc
        _ => null,
    };

    static int? LoadedLocal(Instr x) => x.Op.Value switch
    {
        0x06 => 0, 0x07 => 1, 0x08 => 2, 0x09 => 3,                              // ldloc.0..3
        0x11 => (int)x.Operand, unchecked((short)0xFE0C) => (int)x.Operand,      // ldloc.s, ldloc
        _ => null,
    };

    static bool IsCall(OpCode op) => op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj;

    /// <summary>Whether <paramref name="m"/> makes a new Scalar (an implicit conversion or a ToScalar extension).</summary>
    public static bool MakesScalar(MethodBase m) =>
        m is MethodInfo mi && mi.ReturnType == typeof(Scalar) &&
        ((m.DeclaringType == typeof(Scalar) && m.Name == "op_Implicit") || m.Name == "ToScalar");

    /// <summary>Every call instruction of <paramref name="method"/>, resolved, with the decoded body and a resolver.</summary>
    static IEnumerable<(Instr at, MethodBase callee, List<Instr> body, int index, Func<Instr, MethodBase?> resolve)> Calls(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); } catch (Exception) { yield break; }
        if (il is null) yield break;
        var body = Decode(il);
        Type[]? typeArgs = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        MethodBase? Resolve(Instr x)
        {
            if (!IsCall(x.Op)) return null;
            try { return method.Module.ResolveMethod((int)x.Operand, typeArgs, methodArgs); }
            catch (Exception) { return null; } // a token into an assembly that is not loaded: nothing of TorchSharp's
        }
        for (int k = 0; k < body.Count; k++)
            if (Resolve(body[k]) is MethodBase callee) yield return (body[k], callee, body, k, Resolve);
    }

    /// <summary>Whether the Scalar returned by the call at <paramref name="index"/> is held (field, disposed or kept-alive local).</summary>
    static bool IsHeld(List<Instr> body, int index, Func<Instr, MethodBase?> resolve)
    {
        int next = index + 1;
        while (next < body.Count && body[next].Op == OpCodes.Nop) next++;
        if (next >= body.Count) return false;
        var store = body[next];
        if (store.Op == OpCodes.Stfld || store.Op == OpCodes.Stsfld) return true;
        if (StoredLocal(store) is not int local) return false;
        // `using var` emits ldloc; brfalse; ldloc; callvirt IDisposable.Dispose after the last use (in a finally).
        for (int k = next + 1; k + 1 < body.Count; k++)
            if (LoadedLocal(body[k]) == local && resolve(body[k + 1]) is MethodBase m &&
                (m.Name == "Dispose" || (m.DeclaringType == typeof(GC) && m.Name == nameof(GC.KeepAlive))))
                return true;
        return false;
    }

    /// <summary>The temporaries <paramref name="method"/>'s own body makes (not those inside its callees).</summary>
    public static IEnumerable<(int offset, MethodBase maker)> DirectTemporaries(MethodBase method)
    {
        foreach (var (at, callee, body, index, resolve) in Calls(method))
            if (MakesScalar(callee) && !IsHeld(body, index, resolve))
                yield return (at.Offset, callee);
    }

    static readonly Lazy<HashSet<(Module, int)>> unsafeTorchSharp = new(ComputeUnsafeTorchSharp);

    /// <summary>TorchSharp methods that make a temporary Scalar themselves or through another TorchSharp method.</summary>
    public static IReadOnlySet<(Module, int)> UnsafeTorchSharpMethods => unsafeTorchSharp.Value;

    /// <summary>Whether calling <paramref name="m"/> (a TorchSharp method) makes a temporary Scalar inside.</summary>
    public static bool IsUnsafe(MethodBase m) => unsafeTorchSharp.Value.Contains(Definition(m));

    static IEnumerable<MethodBase> MethodsOf(Assembly assembly)
    {
        Type[] types;
        try { types = assembly.GetTypes(); } catch (ReflectionTypeLoadException e) { types = e.Types.Where(t => t is not null).ToArray()!; }
        foreach (var t in types)
        {
            foreach (var m in t.GetMethods(All)) yield return m;
            foreach (var c in t.GetConstructors(All)) yield return c;
        }
    }

    static HashSet<(Module, int)> ComputeUnsafeTorchSharp()
    {
        var torchSharp = typeof(Scalar).Assembly;
        var callers = new Dictionary<(Module, int), List<(Module, int)>>(); // callee → TorchSharp callers
        var bad = new HashSet<(Module, int)>();
        var work = new Queue<(Module, int)>();
        foreach (var m in MethodsOf(torchSharp))
        {
            if (MakesScalar(m)) continue; // the conversion itself is judged where its result goes
            bool direct = false;
            foreach (var (_, callee, body, index, resolve) in Calls(m))
            {
                if (MakesScalar(callee)) { if (!IsHeld(body, index, resolve)) direct = true; continue; }
                if (callee.DeclaringType?.Assembly != torchSharp) continue;
                var key = Definition(callee);
                if (!callers.TryGetValue(key, out var list)) callers[key] = list = [];
                list.Add(Definition(m));
            }
            if (direct && bad.Add(Definition(m))) work.Enqueue(Definition(m));
        }
        while (work.Count > 0)
            foreach (var caller in callers.GetValueOrDefault(work.Dequeue()) ?? [])
                if (bad.Add(caller)) work.Enqueue(caller);
        return bad;
    }

    /// <summary>A method's identity across generic instantiations and reflected types (its metadata token).</summary>
    static (Module, int) Definition(MethodBase m) => (m.Module, m.MetadataToken);

    /// <summary>TorchSharp module types whose own <c>forward</c> makes a temporary Scalar (directly or in a TorchSharp callee).</summary>
    public static IReadOnlyList<Type> UnsafeModuleTypes() => typeof(Scalar).Assembly.GetTypes()
        .Where(t => typeof(nn.Module).IsAssignableFrom(t) && !t.IsAbstract)
        .Where(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m.Name == "forward")
            .Any(IsUnsafe))
        .OrderBy(t => t.FullName)
        .ToList();

    /// <summary>The source-level name of a compiled method: lambdas, local functions and state machines fold into their host.</summary>
    public static string SourceName(MethodBase m)
    {
        var type = m.DeclaringType!;
        string name = m.Name;
        // <Host>b__3_0 (lambda), <Host>g__Local|3_0 (local function) inside the host type or a closure class;
        // <Host>d__7 (async/iterator state machine) is a nested type whose MoveNext is the body.
        if (name.StartsWith('<')) name = name[1..name.IndexOf('>')];
        while (type.IsNested && type.Name.StartsWith('<'))
        {
            if (type.Name.Contains(">d__")) name = type.Name[1..type.Name.IndexOf('>')];
            type = type.DeclaringType!;
        }
        if (name is ".ctor" or ".cctor") name = name[1..];
        return $"{type.FullName}.{name}";
    }

    /// <summary>Every temporary Scalar DetSeg's compiled code makes, directly or through an unsafe TorchSharp call.</summary>
    public static List<ScalarTemporary> Scan(Assembly assembly)
    {
        var unsafeModules = UnsafeModuleTypes().ToHashSet();
        var found = new List<ScalarTemporary>();
        foreach (var m in MethodsOf(assembly))
        {
            if (m.DeclaringType?.Assembly != assembly) continue;
            foreach (var (at, callee, body, index, resolve) in Calls(m))
            {
                string? why = null;
                bool module = false;
                if (MakesScalar(callee)) { if (!IsHeld(body, index, resolve)) why = Describe(callee); }
                else if (callee.DeclaringType?.Assembly == typeof(Scalar).Assembly)
                {
                    if (IsUnsafe(callee)) why = Describe(callee);
                    else if ((callee is ConstructorInfo ? callee.DeclaringType : (callee as MethodInfo)?.ReturnType) is Type made && unsafeModules.Contains(made))
                    {
                        why = $"{Describe(callee)} (makes {made.Name}, whose forward makes a temporary Scalar)";
                        module = true;
                    }
                }
                if (why is not null) found.Add(new ScalarTemporary(SourceName(m), at.Offset, why, module));
            }
        }
        return found;
    }

    static string Describe(MethodBase m) =>
        $"{m.DeclaringType?.Name}.{m.Name}({string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name))})";
}
