using System.Globalization;
using System.Numerics;

namespace DetSeg.Metrics;

/// <summary>
/// Python's fixed-point formatting (<c>f'{x:.Nf}'</c>): the exact binary value rounded half to even. .NET's
/// <c>"F"</c> rounds exact ties away from zero (0.125 → "0.13" where Python prints "0.12"), so tables that must
/// read as the course's printout go through here.
/// </summary>
public static class PyFormat
{
    /// <summary><c>f'{value:.{decimals}f}'</c>; NaN and infinities as Python prints them (nan, inf, -inf).</summary>
    public static string Fixed(double value, int decimals)
    {
        if (decimals < 0) throw new ArgumentOutOfRangeException(nameof(decimals), decimals, "decimals must be ≥ 0.");
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        bool negative = value < 0 || (value == 0 && double.IsNegative(value));
        // |value| = mantissa · 2^exponent exactly; as a fraction num / 2^k
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(value));
        int rawExp = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (rawExp == 0) rawExp = 1; else mantissa |= 1L << 52;
        int exponent = rawExp - 1075;
        BigInteger num = mantissa, den = BigInteger.One;
        if (exponent >= 0) num <<= exponent; else den <<= -exponent;
        // scaled = |value| · 10^decimals, rounded half to even
        num *= BigInteger.Pow(10, decimals);
        var q = BigInteger.DivRem(num, den, out var rem);
        int cmp = (rem * 2).CompareTo(den);
        if (cmp > 0 || (cmp == 0 && !q.IsEven)) q += 1;
        string digits = q.ToString(CultureInfo.InvariantCulture).PadLeft(decimals + 1, '0');
        string text = decimals == 0 ? digits : digits[..^decimals] + "." + digits[^decimals..];
        return negative ? "-" + text : text;
    }
}
