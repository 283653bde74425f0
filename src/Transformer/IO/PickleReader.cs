// A restricted reader for the pickle stream inside a PyTorch checkpoint (data.pkl). It is a stack machine
// over the opcodes of protocols 2–5 that a state dict uses, and it never runs anything: a pickle names
// callables (GLOBAL "module name") and asks for them to be called (REDUCE, NEWOBJ, BUILD); Python's
// pickle.load imports and calls whatever is named, which is how a .pt file can run code. Here every
// named callable must be in a short allow-list, and "calling" one builds a plain C# value:
//   collections.OrderedDict()                     → PickleDict
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …) → TorchTensorRef
//   torch._utils._rebuild_parameter(tensor, …)    → the tensor (an nn.Parameter saved by mistake)
//   torch.{Float,Half,BFloat16,…}Storage          → only as the type inside a persistent id
//   argparse.Namespace                            → an inert PickleObject (train.py's `args`): its
//                                                   fields are kept as data, nothing is imported
// Any other GLOBAL is refused at once, naming the import (e.g. 'posix.system' for os.system).
// Opcode meanings follow CPython's Lib/pickletools.py; persistent ids follow torch/serialization.py
// ("storage", storage type, key, location, numel).
using System.Buffers.Binary;
using System.Text;

namespace BlockDance.Transformer.IO;

/// <summary>A dict or OrderedDict, in insertion order.</summary>
public sealed class PickleDict
{
    readonly List<KeyValuePair<object?, object?>> items = [];
    // key → position in `items`: insertion and lookup in O(1), so a state dict of n keys loads in O(n)
    // (a linear search per insertion made 500,000 keys take minutes). Keys are strings, numbers or tuples of them;
    // a tuple (object?[]) is compared by reference, as before. None is kept apart (a dictionary key cannot be null).
    readonly Dictionary<object, int> index = [];
    int nullAt = -1;

    public IReadOnlyList<KeyValuePair<object?, object?>> Items => items;

    public void Set(object? key, object? value)
    {
        int at = key is null ? nullAt : index.GetValueOrDefault(key, -1);
        if (at >= 0) { items[at] = new(key, value); return; }
        if (key is null) nullAt = items.Count; else index[key] = items.Count;
        items.Add(new(key, value));
    }
    public object? Get(string key) => index.TryGetValue(key, out int at) ? items[at].Value : null;
    public bool Has(string key) => index.ContainsKey(key);
}

/// <summary>An allowed global, as the pickle named it.</summary>
public sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>An object of an allowed data-only class (argparse.Namespace): never constructed, only described.</summary>
public sealed record PickleObject(PickleGlobal Class);

/// <summary>A torch storage: its element type, the zip entry that holds its bytes, and its length.</summary>
public sealed record TorchStorageRef(string DType, int ElementBytes, string Key, long Numel);

/// <summary>A tensor view of a storage (torch._utils._rebuild_tensor_v2).</summary>
public sealed record TorchTensorRef(TorchStorageRef Storage, long Offset, long[] Shape, long[] Stride);

public sealed class PickleReader
{
    /// <summary>Storage classes torch writes into persistent ids, with the dtype and element size they carry.</summary>
    static readonly Dictionary<string, (string DType, int Bytes)> Storages = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ("F32", 4), ["HalfStorage"] = ("F16", 2), ["BFloat16Storage"] = ("BF16", 2),
        // other element types occur in optimizer states; they are parsed, and refused if read as weights
        ["DoubleStorage"] = ("F64", 8), ["LongStorage"] = ("I64", 8), ["IntStorage"] = ("I32", 4),
        ["ShortStorage"] = ("I16", 2), ["CharStorage"] = ("I8", 1), ["ByteStorage"] = ("U8", 1), ["BoolStorage"] = ("BOOL", 1),
    };

    static readonly HashSet<string> Callables = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "argparse.Namespace",
    };

    /// <summary>Everything a checkpoint may import, for messages.</summary>
    public static string AllowedList =>
        "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage, argparse.Namespace";

    sealed class Mark;
    static readonly Mark MarkObj = new();

    readonly byte[] _data;
    readonly string _where;
    int _pos;
    readonly List<object?> _stack = [];
    readonly Dictionary<long, object?> _memo = [];

    PickleReader(byte[] data, string where) { _data = data; _where = where; }

    /// <summary>Reads one pickle; every failure is a TorchCheckpointException naming `where`.</summary>
    public static object? Load(byte[] data, string where) => new PickleReader(data, where).Run();

    TorchCheckpointException Error(string detail) => new($"{_where}: {detail}");

    object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle ends without STOP (truncated)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: Bytes(1); break;                                   // PROTO
                case 0x95: Bytes(8); break;                                   // FRAME (length only)
                case (byte)'.':                                               // STOP
                    if (_stack.Count != 1) throw Error($"pickle stops with {_stack.Count} values on the stack, expected 1");
                    return _stack[0];
                case (byte)'(': _stack.Add(MarkObj); break;                   // MARK
                case (byte)'0': Pop(); break;                                 // POP
                case (byte)'1': PopMark(); break;                             // POP_MARK
                case (byte)'2': _stack.Add(Peek()); break;                    // DUP
                case (byte)'N': _stack.Add(null); break;                      // NONE
                case 0x88: _stack.Add(true); break;                           // NEWTRUE
                case 0x89: _stack.Add(false); break;                          // NEWFALSE
                case (byte)'J': _stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case (byte)'K': _stack.Add((long)Bytes(1)[0]); break;         // BININT1
                case (byte)'M': _stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case 0x8a: _stack.Add(Long(Bytes(1)[0])); break;              // LONG1
                case 0x8b: _stack.Add(Long(Length(4))); break;                // LONG4
                case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break; // BINFLOAT
                case (byte)'X': _stack.Add(Utf8(Length(4))); break;           // BINUNICODE
                case 0x8c: _stack.Add(Utf8(Bytes(1)[0])); break;              // SHORT_BINUNICODE
                case 0x8d: _stack.Add(Utf8(Length(8))); break;                // BINUNICODE8
                case (byte)'U': _stack.Add(Encoding.Latin1.GetString(Bytes(Bytes(1)[0]))); break; // SHORT_BINSTRING
                case (byte)'T': _stack.Add(Encoding.Latin1.GetString(Bytes(Length(4)))); break;   // BINSTRING
                case (byte)'C': _stack.Add(Bytes(Bytes(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)'B': _stack.Add(Bytes(Length(4)).ToArray()); break;   // BINBYTES
                case 0x8e: _stack.Add(Bytes(Length(8)).ToArray()); break;        // BINBYTES8
                case (byte)'}': _stack.Add(new PickleDict()); break;          // EMPTY_DICT
                case (byte)']': _stack.Add(new List<object?>()); break;       // EMPTY_LIST
                case (byte)')': _stack.Add(Array.Empty<object?>()); break;    // EMPTY_TUPLE
                case (byte)'t': _stack.Add(PopMark().ToArray()); break;       // TUPLE
                case 0x85: _stack.Add(PopN(1)); break;                        // TUPLE1
                case 0x86: _stack.Add(PopN(2)); break;                        // TUPLE2
                case 0x87: _stack.Add(PopN(3)); break;                        // TUPLE3
                case (byte)'l': _stack.Add(PopMark()); break;                 // LIST
                case (byte)'d': _stack.Add(DictOf(PopMark())); break;         // DICT
                case (byte)'a': { var v = Pop(); As<List<object?>>(Peek(), "APPEND").Add(v); break; }
                case (byte)'e': { var vs = PopMark(); As<List<object?>>(Peek(), "APPENDS").AddRange(vs); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); As<PickleDict>(Peek(), "SETITEM").Set(k, v); break; }
                case (byte)'u':                                               // SETITEMS
                {
                    var kvs = PopMark();
                    if (kvs.Count % 2 != 0) throw Error("SETITEMS with an odd number of values");
                    var d = As<PickleDict>(Peek(), "SETITEMS");
                    for (int i = 0; i < kvs.Count; i += 2) d.Set(kvs[i], kvs[i + 1]);
                    break;
                }
                case (byte)'q': _memo[Bytes(1)[0]] = Peek(); break;           // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(); break;                // MEMOIZE
                case (byte)'h': _stack.Add(Memo(Bytes(1)[0])); break;         // BINGET
                case (byte)'j': _stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break; // LONG_BINGET
                case (byte)'c': _stack.Add(Global(Line(), Line())); break;    // GLOBAL "module\nname\n"
                case 0x93:                                                    // STACK_GLOBAL
                {
                    var name = Pop(); var module = Pop();
                    if (module is not string m || name is not string n) throw Error("STACK_GLOBAL without two strings");
                    _stack.Add(Global(m, n));
                    break;
                }
                case (byte)'Q': _stack.Add(PersistentId(Pop())); break;       // BINPERSID
                case (byte)'R': { var args = Pop(); var f = Pop(); _stack.Add(Call(f, args)); break; } // REDUCE
                case 0x81: { var args = Pop(); var cls = Pop(); _stack.Add(New(cls, args)); break; }   // NEWOBJ
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; }                    // BUILD
                default:
                    throw Error($"pickle opcode 0x{op:x2} at byte {_pos - 1}: expected only the opcodes of a state dict");
            }
        }
    }

    object Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (module == "torch" && Storages.ContainsKey(name)) return new PickleGlobal(module, name);
        if (Callables.Contains(full)) return new PickleGlobal(module, name);
        throw Error($"refused import '{OneLine(full)}': a checkpoint may import only {AllowedList} (nothing in it is run)");
    }

    object? Call(object? f, object? args)
    {
        if (f is not PickleGlobal g || args is not object?[] a)
            throw Error($"REDUCE of {Describe(f)}: expected an allowed callable and an argument tuple");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                if (a.Length != 0) throw Error("collections.OrderedDict with arguments: expected OrderedDict()");
                return new PickleDict();
            case "torch._utils._rebuild_tensor_v2":
                if (a.Length < 6) throw Error($"_rebuild_tensor_v2 with {a.Length} arguments, expected 6 or 7");
                var storage = a[0] as TorchStorageRef ?? throw Error($"_rebuild_tensor_v2: expected a storage, found {Describe(a[0])}");
                long offset = a[1] as long? ?? throw Error("_rebuild_tensor_v2: storage offset is not an integer");
                return new TorchTensorRef(storage, offset, Ints(a[2], "size"), Ints(a[3], "stride"));
            case "torch._utils._rebuild_parameter":
                if (a.Length < 1 || a[0] is not TorchTensorRef t) throw Error("_rebuild_parameter: expected a tensor argument");
                return t;
            default:
                throw Error($"REDUCE of '{g}': expected one of collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter");
        }
    }

    object New(object? cls, object? args)
    {
        if (cls is PickleGlobal { Module: "argparse", Name: "Namespace" } g && args is object?[] { Length: 0 })
            return new PickleObject(g);
        throw Error($"NEWOBJ of {Describe(cls)}: expected argparse.Namespace()");
    }

    void Build(object? target, object? state)
    {
        // OrderedDict carries state_dict()'s _metadata (module versions) as its instance dict; a Namespace its fields.
        if (target is PickleDict or PickleObject) return;
        throw Error($"BUILD on {Describe(target)}: expected a dict or argparse.Namespace");
    }

    TorchStorageRef PersistentId(object? pid)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw Error($"persistent id {Describe(pid)}: expected ('storage', type, key, location, numel)");
        if (t[1] is not PickleGlobal { Module: "torch" } g || !Storages.TryGetValue(g.Name, out var dt))
            throw Error($"storage type {Describe(t[1])}: expected a torch storage class");
        if (t[2] is not string key || t[4] is not long numel || numel < 0)
            throw Error("storage persistent id: expected a string key and a non-negative element count");
        return new TorchStorageRef(dt.DType, dt.Bytes, key, numel);
    }

    long[] Ints(object? v, string what)
    {
        if (v is not object?[] a) throw Error($"_rebuild_tensor_v2: {what} is {Describe(v)}, expected a tuple of integers");
        var r = new long[a.Length];
        for (int i = 0; i < a.Length; i++)
            r[i] = a[i] as long? ?? throw Error($"_rebuild_tensor_v2: {what}[{i}] is {Describe(a[i])}, expected an integer");
        return r;
    }

    PickleDict DictOf(List<object?> kvs)
    {
        if (kvs.Count % 2 != 0) throw Error("DICT with an odd number of values");
        var d = new PickleDict();
        for (int i = 0; i < kvs.Count; i += 2) d.Set(kvs[i], kvs[i + 1]);
        return d;
    }

    T As<T>(object? v, string op) where T : class =>
        v as T ?? throw Error($"{op} on {Describe(v)}");

    static string Describe(object? v) => v switch
    {
        null => "None",
        PickleGlobal g => $"'{g}'",
        string s => $"'{OneLine(s)}'",
        object?[] a => $"a tuple of {a.Length}",
        _ => v.GetType().Name,
    };

    static string OneLine(string s) => SafeTensorsException.OneLine(s.Length > 200 ? s[..200] + "..." : s);

    object? Memo(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} read before it was written");

    object? Pop()
    {
        if (_stack.Count == 0) throw Error("pickle stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        if (v is Mark) throw Error("pickle pops a MARK as a value");
        return v;
    }

    object? Peek() => _stack.Count > 0 && _stack[^1] is not Mark ? _stack[^1] : throw Error("pickle stack underflow");

    object?[] PopN(int n)
    {
        var r = new object?[n];
        for (int i = n - 1; i >= 0; i--) r[i] = Pop();
        return r;
    }

    List<object?> PopMark()
    {
        int m = _stack.FindLastIndex(v => v is Mark);
        if (m < 0) throw Error("pickle has no MARK to pop to");
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    ReadOnlySpan<byte> Bytes(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"pickle truncated: needs {n} bytes at byte {_pos}, found {_data.Length - _pos}");
        var s = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    long Length(int bytes) => bytes == 4
        ? BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))
        : (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8)), long.MaxValue);

    string Utf8(long n) => Encoding.UTF8.GetString(Bytes(n));

    long Long(long n)
    {
        var b = Bytes(n);
        if (n > 8) throw Error($"an integer of {n} bytes, expected at most 8");
        long v = 0;
        for (int i = (int)n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n is > 0 and < 8 && (b[(int)n - 1] & 0x80) != 0) v -= 1L << (int)(8 * n);   // two's complement
        return v;
    }

    string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 1000) throw Error("GLOBAL without a newline-terminated name");
        var s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }
}
