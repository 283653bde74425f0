// What a demo caption asks for, read back for prompt adherence: the digit it names ("a handwritten seven", "the digit 7",
// "an 8 moving left": the words zero…nine or a lone numeral 0…9) and, for the video demo, the direction of motion it
// names (left, right, up, down). A prompt naming none or two different ones asks for nothing measurable: null.
using System.Text.RegularExpressions;

namespace BlockDance.Sampler.Evaluation;

public static class PromptDigits
{
    static readonly string[] Words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    public static readonly string[] Directions = ["left", "right", "up", "down"];

    static IEnumerable<string> Tokens(string prompt) =>
        Regex.Split(prompt.ToLowerInvariant(), "[^a-z0-9]+").Where(t => t.Length > 0);

    /// <summary>The one digit the prompt names, else null.</summary>
    public static int? Digit(string prompt)
    {
        var found = Tokens(prompt).Select(t => t.Length == 1 && char.IsAsciiDigit(t[0]) ? t[0] - '0' : Array.IndexOf(Words, t))
                                  .Where(d => d >= 0).Distinct().ToList();
        return found.Count == 1 ? found[0] : null;
    }

    /// <summary>The one direction of motion the prompt names, else null.</summary>
    public static string? Direction(string prompt)
    {
        var found = Tokens(prompt).Where(t => Directions.Contains(t)).Distinct().ToList();
        return found.Count == 1 ? found[0] : null;
    }
}
