// Errors by layer. Everything the user can get wrong — an option, a file, a value inside a well-formed
// file, a device that is missing or too small — is an InputException: the program prints its one-line
// message and exits 2. Anything else that escapes is an internal fault (a bug): the program prints a
// distinct one-line message and exit code, and the trace only behind --verbose.
namespace BlockDance.Kernels;

/// <summary>Base of every user-facing error: one line stating what was expected and what was found.</summary>
/// Field names the value the message is about in the core's words ("guidance scale", "noise"); the program
/// reports such an error under the flag that set it (the CLI's FlagErrors), so core messages need not name flags.
public abstract class InputException(string message, Exception? inner = null) : Exception(message, inner)
{
    public string? Field { get; init; }
}

/// <summary>An impossible value: "what: expected …, found …".</summary>
public sealed class InvalidValueException(string what, string expected, string found)
    : InputException($"{what}: expected {expected}, found {found}")
{
    public string What => what;
}
