//! User data files: parsing a data matrix `A` and a target vector `b` from CSV text or
//! NumPy `.npy` bytes into [`Mat`], and writing them back.
//!
//! Owns the file formats ([`Format`]), their parsers ([`parse_csv`], [`parse_npy`],
//! [`parse_matrix`]), writers ([`write_csv`], [`write_npy`]) and the one error type
//! ([`DataError`]). Like the rest of `compute` it does no I/O: the caller reads the file and
//! hands over its bytes, and puts the file name in front of an error message if it wants
//! one. Every error is one lower-case line that says what is wrong and where (1-based line
//! and column numbers for CSV, 1-based row and column for `.npy`). No input makes these
//! functions panic, and parsing never allocates much more than the input's own size.
//!
//! Only finite values are accepted: NaN and ±infinity are rejected with their position.

use std::borrow::Cow;
use std::path::Path;

use ndarray_npy::npy::header::{Header, Layout, ParseHeaderError, ReadHeaderError};
use ndarray_npy::{ReadDataError, ReadableElement};

use super::det::{Mat, ShapeError};

/// Why a data file cannot become a matrix (or a matrix not a vector).
///
/// Every message is a single lower-case line naming the problem and its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    /// The path has no extension, so the format is unknown.
    #[error("cannot tell the format of {name:?}: it has no extension (expected .csv, .txt or .npy)")]
    NoExtension {
        /// The path as given.
        name: String,
    },
    /// The path's extension is not one this module reads.
    #[error("unsupported file extension \".{ext}\" (expected .csv, .txt or .npy)")]
    UnknownExtension {
        /// The extension, without the dot.
        ext: String,
    },
    /// The CSV text has no non-blank line.
    #[error("empty file: no rows")]
    Empty,
    /// The CSV text has a header line and nothing after it.
    #[error("no data rows: the file has only a header line")]
    HeaderOnly,
    /// CSV bytes that are not UTF-8.
    #[error("line {line}: not valid utf-8 text{}", if *looks_like_npy { " (this looks like a .npy file)" } else { "" })]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// The bytes start with the `.npy` magic string.
        looks_like_npy: bool,
    },
    /// A blank CSV line before the last row.
    #[error("line {line} is blank (blank lines are only allowed at the end of the file)")]
    BlankLine {
        /// 1-based line.
        line: usize,
    },
    /// A quoted CSV cell without its closing quote.
    #[error("line {line}, column {column}: unterminated quote")]
    UnterminatedQuote {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
    },
    /// Text between a quoted cell's closing quote and the next comma.
    #[error("line {line}, column {column}: unexpected text after the closing quote")]
    TextAfterQuote {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
    },
    /// An empty data cell (a missing value).
    #[error("line {line}, column {column}: empty cell")]
    EmptyCell {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
    },
    /// A data cell that does not parse as a number.
    #[error("line {line}, column {column}: {cell:?} is not a number")]
    NotANumber {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
        /// The cell's text (cut to 40 characters).
        cell: String,
    },
    /// A data cell whose magnitude overflows f64 (e.g. `1e400`).
    #[error("line {line}, column {column}: {cell:?} is out of range for a 64-bit float")]
    OutOfRange {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
        /// The cell's text (cut to 40 characters).
        cell: String,
    },
    /// A CSV cell spelling NaN or an infinity.
    #[error("line {line}, column {column}: {} is not allowed", non_finite_name(*value))]
    NonFinite {
        /// 1-based line.
        line: usize,
        /// 1-based column (cell index).
        column: usize,
        /// The value (NaN or ±infinity).
        value: f64,
    },
    /// A CSV line whose cell count differs from the first line's.
    #[error("line {line} has {found} columns, line {expected_line} has {expected}")]
    ColumnCount {
        /// 1-based line with the wrong count.
        line: usize,
        /// Its number of cells.
        found: usize,
        /// 1-based line that set the expected count (the header or first data line).
        expected_line: usize,
        /// The expected number of cells.
        expected: usize,
    },
    /// The bytes do not start with the `.npy` magic string `\x93NUMPY`.
    #[error("not a .npy file: it does not start with the magic string \\x93NUMPY")]
    NpyMagic,
    /// The `.npy` bytes end early.
    #[error("truncated .npy file: {0}")]
    NpyTruncated(String),
    /// A `.npy` format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (expected 1.0, 2.0 or 3.0)")]
    NpyVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// A malformed `.npy` header.
    #[error("invalid .npy header: {0}")]
    NpyHeader(String),
    /// A dtype other than float64, float32 or a plain integer type.
    #[error("unsupported .npy dtype {0} (expected float64, float32 or an integer type such as int32 or int64)")]
    NpyDtype(String),
    /// A `.npy` array that is neither 1-D nor 2-D.
    #[error("{ndim}-d array with shape {shape}: only 1-d and 2-d arrays are supported")]
    NpyDims {
        /// Number of dimensions.
        ndim: usize,
        /// The shape, as a Python tuple.
        shape: String,
    },
    /// A `.npy` array with no elements.
    #[error("empty array with shape {shape}: no values")]
    NpyEmpty {
        /// The shape, as a Python tuple.
        shape: String,
    },
    /// A `.npy` shape whose size overflows.
    #[error("array with shape {shape} is too large")]
    NpyTooLarge {
        /// The shape, as a Python tuple.
        shape: String,
    },
    /// Bytes after the end of the `.npy` array data.
    #[error("{extra} unexpected bytes after the end of the .npy array data")]
    NpyTrailing {
        /// How many.
        extra: usize,
    },
    /// A NaN or infinity in a `.npy` array.
    #[error("row {row}, column {column}: {} is not allowed", non_finite_name(*value))]
    NpyNonFinite {
        /// 1-based row.
        row: usize,
        /// 1-based column (1 for a 1-D array).
        column: usize,
        /// The value (NaN or ±infinity).
        value: f64,
    },
    /// A buffer that does not fit its shape (cannot happen from the parsers).
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// [`to_vector`] of a matrix with more than one row and column.
    #[error("expected a vector (n x 1 or 1 x n), got a {rows}x{cols} matrix")]
    NotAVector {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "infinity"
    } else {
        "-infinity"
    }
}

/// A data file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text (`.csv`, `.txt`).
    Csv,
    /// NumPy `.npy` binary.
    Npy,
}

impl Format {
    /// The format named by `path`'s extension (case-insensitive): `.csv` and `.txt` are
    /// [`Format::Csv`], `.npy` is [`Format::Npy`]; anything else is an error naming it.
    pub fn from_path(path: &Path) -> Result<Format, DataError> {
        let Some(ext) = path.extension() else {
            return Err(DataError::NoExtension { name: path.display().to_string() });
        };
        let ext = ext.to_string_lossy();
        match ext.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Ok(Format::Csv),
            "npy" => Ok(Format::Npy),
            _ => Err(DataError::UnknownExtension { ext: ext.into_owned() }),
        }
    }
}

/// Parses a file's bytes in `format`: CSV must be UTF-8 (see [`parse_csv`]), `.npy` see
/// [`parse_npy`].
pub fn parse_matrix(format: Format, bytes: &[u8]) -> Result<Mat, DataError> {
    match format {
        Format::Npy => parse_npy(bytes),
        Format::Csv => match std::str::from_utf8(bytes) {
            Ok(text) => parse_csv(text),
            Err(e) => {
                let bad = bytes.get(..e.valid_up_to()).unwrap_or_default();
                Err(DataError::NotUtf8 {
                    line: bad.iter().filter(|&&c| c == b'\n').count() + 1,
                    looks_like_npy: bytes.starts_with(NPY_MAGIC),
                })
            }
        },
    }
}

/// Turns an `n x 1` or `1 x n` matrix (a 1-D `.npy` array parses as `n x 1`) into its
/// values; any other shape is an error naming it.
pub fn to_vector(m: Mat) -> Result<Vec<f64>, DataError> {
    if m.rows() == 1 || m.cols() == 1 {
        Ok(m.into_vec())
    } else {
        Err(DataError::NotAVector { rows: m.rows(), cols: m.cols() })
    }
}

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

/// Longest cell text kept in an error message.
const MAX_SHOWN: usize = 40;

/// `cell` cut to [`MAX_SHOWN`] characters for an error message.
fn shown(cell: &str) -> String {
    match cell.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{}...", &cell[..i]),
        None => cell.to_owned(),
    }
}

/// Parses comma-separated numbers into a row-major matrix, one line per row.
///
/// Accepted: whitespace around cells, `\r\n` line endings, a UTF-8 byte-order mark, blank
/// lines at the end, double-quoted cells (`"1.5"`; `""` inside quotes is a quote), and
/// anything Rust's `f64` parser reads (`1`, `-2.5e-3`, `.5`). The first line is a header,
/// and skipped, only when *every* one of its cells is non-numeric (an empty cell counts as
/// non-numeric); otherwise a non-numeric cell anywhere is an error. Every row, the header
/// included, must have the same number of cells.
///
/// Rejected, with the 1-based line and column (the cell's index on its line, as a
/// spreadsheet numbers them): non-numbers, empty cells, NaN and infinities in any spelling
/// (`nan`, `inf`, `-Infinity`), values too large for f64 (`1e400`), blank lines before the
/// last row, ragged rows, and a file with no data row.
pub fn parse_csv(text: &str) -> Result<Mat, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let used = lines.iter().rposition(|l| !l.trim().is_empty()).map_or(0, |p| p + 1);
    if used == 0 {
        return Err(DataError::Empty);
    }
    let mut data = Vec::new();
    let mut cells: Vec<Cow<'_, str>> = Vec::new();
    let mut rows = 0usize;
    // (1-based line, cell count) of the line that fixed the row width.
    let mut width: Option<(usize, usize)> = None;
    for (idx, raw) in lines.iter().take(used).enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            return Err(DataError::BlankLine { line });
        }
        split_cells(raw, line, &mut cells)?;
        match width {
            None => width = Some((line, cells.len())),
            Some((expected_line, expected)) if cells.len() != expected => {
                return Err(DataError::ColumnCount { line, found: cells.len(), expected_line, expected });
            }
            Some(_) => {}
        }
        if idx == 0 && cells.iter().all(|c| c.trim().parse::<f64>().is_err()) {
            continue; // header
        }
        for (j, cell) in cells.iter().enumerate() {
            data.push(parse_cell(cell, line, j + 1)?);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::HeaderOnly);
    }
    let cols = width.map_or(0, |(_, c)| c);
    Ok(Mat::from_vec(rows, cols, data)?)
}

/// Splits one CSV line into `out`, handling double quotes; cells keep surrounding
/// whitespace unless quoted (callers trim).
fn split_cells<'a>(line_text: &'a str, line: usize, out: &mut Vec<Cow<'a, str>>) -> Result<(), DataError> {
    out.clear();
    let b = line_text.as_bytes();
    let mut i = 0;
    loop {
        let column = out.len() + 1;
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let end = loop {
                match b.get(j..).and_then(|rest| rest.iter().position(|&c| c == b'"')) {
                    None => return Err(DataError::UnterminatedQuote { line, column }),
                    Some(q) if b.get(j + q + 1) == Some(&b'"') => j += q + 2,
                    Some(q) => break j + q,
                }
            };
            let inner = line_text.get(start..end).unwrap_or_default();
            out.push(if inner.contains("\"\"") {
                Cow::Owned(inner.replace("\"\"", "\""))
            } else {
                Cow::Borrowed(inner)
            });
            i = end + 1;
            while matches!(b.get(i), Some(c) if c.is_ascii_whitespace()) {
                i += 1;
            }
            match b.get(i) {
                None => return Ok(()),
                Some(b',') => i += 1,
                Some(_) => return Err(DataError::TextAfterQuote { line, column }),
            }
        } else {
            let rest = line_text.get(i..).unwrap_or_default();
            match rest.find(',') {
                Some(k) => {
                    out.push(Cow::Borrowed(&rest[..k]));
                    i += k + 1;
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

/// One data cell as a finite f64.
fn parse_cell(cell: &str, line: usize, column: usize) -> Result<f64, DataError> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err(DataError::EmptyCell { line, column });
    }
    match cell.parse::<f64>() {
        Err(_) => Err(DataError::NotANumber { line, column, cell: shown(cell) }),
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => {
            let unsigned = cell.trim_start_matches(['+', '-']);
            let spelled = unsigned.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("inf"))
                || unsigned.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("nan"));
            if spelled {
                Err(DataError::NonFinite { line, column, value: v })
            } else {
                Err(DataError::OutOfRange { line, column, cell: shown(cell) })
            }
        }
    }
}

/// Writes `m` as CSV: one line per row, cells separated by `,`, no header, each value in
/// the shortest form that parses back to the same bits (Rust's `{:?}` for f64, e.g. `1.0`,
/// `-0.0`, `1e300`), so [`parse_csv`] returns a bit-identical matrix. NaN and infinities are
/// written as `NaN`/`inf`, which [`parse_csv`] rejects.
pub fn write_csv(m: &Mat) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(m.rows() * m.cols() * 12);
    for i in 0..m.rows() {
        for (j, v) in m.row(i).iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            let _ = write!(s, "{v:?}");
        }
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------

const NPY_MAGIC: &[u8] = b"\x93NUMPY";
/// Longest header accepted (NumPy's own default `max_header_size`).
const MAX_HEADER_LEN: usize = 10_000;
/// Deepest bracket nesting accepted in a header (a plain dtype needs 2).
const MAX_HEADER_DEPTH: usize = 8;

/// The element types read, with their byte sizes.
#[derive(Clone, Copy)]
enum Elem {
    F8,
    F4,
    I1,
    I2,
    I4,
    I8,
    U1,
    U2,
    U4,
    U8,
}

impl Elem {
    /// The element type of a dtype string as `ndarray-npy` spells it.
    fn from_descr(d: &str) -> Option<Elem> {
        Some(match d {
            "<f8" | ">f8" => Elem::F8,
            "<f4" | ">f4" => Elem::F4,
            "|i1" | "i1" | "b" => Elem::I1,
            "<i2" | ">i2" => Elem::I2,
            "<i4" | ">i4" => Elem::I4,
            "<i8" | ">i8" => Elem::I8,
            "|u1" | "u1" | "B" => Elem::U1,
            "<u2" | ">u2" => Elem::U2,
            "<u4" | ">u4" => Elem::U4,
            "<u8" | ">u8" => Elem::U8,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Elem::I1 | Elem::U1 => 1,
            Elem::I2 | Elem::U2 => 2,
            Elem::F4 | Elem::I4 | Elem::U4 => 4,
            Elem::F8 | Elem::I8 | Elem::U8 => 8,
        }
    }
}

/// A header-derived string made safe for a one-line message.
fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    shown(&s)
}

fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Checks the header dictionary's text before `ndarray-npy` parses it as a Python literal.
///
/// A NumPy header only holds strings, non-negative integers, `True`/`False`/`None` and
/// punctuation, nested a few levels deep. Anything else (number arithmetic like `1e0 - 1`,
/// hex or float literals, bytes literals, deep nesting) is refused here with a precise
/// message, so only that small, well-trodden subset of the literal grammar reaches the
/// library.
fn check_header_text(text: &[u8]) -> Result<(), DataError> {
    let bad = |why: String| Err(DataError::NpyHeader(why));
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        match c {
            b'\'' | b'"' => {
                let triple = text.get(i..i + 3) == Some(&[c, c, c][..]);
                let delim = if triple { 3 } else { 1 };
                i += delim;
                loop {
                    match text.get(i) {
                        None => return bad("unterminated string".into()),
                        Some(b'\\') => i += 2,
                        Some(&d) if d == c && (!triple || text.get(i..i + 3) == Some(&[c, c, c][..])) => {
                            i += delim;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_HEADER_DEPTH {
                    return bad("brackets nested too deeply".into());
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while matches!(text.get(i), Some(c) if c.is_ascii_alphanumeric() || *c == b'_') {
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or_default();
                let number = word.iter().all(u8::is_ascii_digit);
                if number && word.len() > 20 {
                    return bad("a number in the header is too long".into());
                }
                if !number && !matches!(word, b"True" | b"False" | b"None") {
                    return bad(format!("unexpected {:?}", one_line(&String::from_utf8_lossy(word))));
                }
            }
            _ => {
                let ch = String::from_utf8_lossy(text.get(i..i + 1).unwrap_or_default()).into_owned();
                return bad(format!("unexpected character {:?}", one_line(&ch)));
            }
        }
    }
    Ok(())
}

fn header_error(e: ReadHeaderError) -> DataError {
    let parse = match e {
        ReadHeaderError::Io(_) => {
            return DataError::NpyTruncated("the file ends inside the header".into());
        }
        ReadHeaderError::Parse(p) => p,
    };
    let why = match parse {
        ParseHeaderError::MagicString => return DataError::NpyMagic,
        ParseHeaderError::Version { major, minor } => {
            return DataError::NpyVersion { major, minor };
        }
        ParseHeaderError::HeaderLengthOverflow(n) => format!("header length {n} is too large"),
        ParseHeaderError::NonAscii => "the header contains non-ascii characters".into(),
        ParseHeaderError::Utf8Parse(_) => "the header is not valid utf-8".into(),
        ParseHeaderError::UnknownKey(k) => format!("unknown key {}", one_line(&k.to_string())),
        ParseHeaderError::MissingKey(k) => {
            // ndarray-npy 0.10 misspells this one.
            let k = if k == "shaper" { "shape".to_owned() } else { k };
            format!("missing key '{}'", one_line(&k))
        }
        ParseHeaderError::IllegalValue { key, value } => {
            format!("invalid value {} for '{}'", one_line(&value.to_string()), one_line(&key))
        }
        ParseHeaderError::DictParse(_) => "the header is not a valid python dict literal".into(),
        ParseHeaderError::MetaNotDict(_) => "the header is not a python dict".into(),
        ParseHeaderError::MissingNewline => "the header does not end with a newline".into(),
    };
    DataError::NpyHeader(why)
}

/// Reads `len` elements of type `T` from `data` (exactly its length) as `header` describes.
fn read_elems<T: ReadableElement>(data: &[u8], header: &Header, len: usize) -> Result<Vec<T>, DataError> {
    T::read_to_end_exact_vec(data, &header.type_descriptor, len).map_err(|e| match e {
        ReadDataError::Io(_) | ReadDataError::MissingData => {
            DataError::NpyTruncated("the file ends inside the array data".into())
        }
        ReadDataError::WrongDescriptor(d) => DataError::NpyDtype(one_line(&d.to_string())),
        ReadDataError::ExtraBytes(extra) => DataError::NpyTrailing { extra },
        ReadDataError::ParseData(e) => DataError::NpyHeader(format!("bad array data: {}", one_line(&e.to_string()))),
    })
}

fn widen<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

/// Parses NumPy `.npy` bytes (format versions 1.0, 2.0 and 3.0) with `ndarray-npy`.
///
/// Accepted dtypes: float64 and float32, and the integer types int8 to int64 and uint8 to
/// uint64, each little- or big-endian; everything is converted to f64 (int64 and uint64
/// values beyond 2^53 round to the nearest f64, as NumPy's `astype(float)` does). A 1-D
/// array of length `n` becomes an `n x 1` matrix; a 2-D array in C or Fortran order becomes
/// the row-major matrix of the same shape. Rejected, each with a one-line message: a bad
/// magic string, a truncated file, trailing bytes, an unsupported dtype (complex, bool,
/// float16, structured, ...), 0-D and 3-D or higher arrays, arrays with no elements, and
/// NaN or infinity (with its 1-based row and column).
pub fn parse_npy(bytes: &[u8]) -> Result<Mat, DataError> {
    // Prefix checks by hand, so errors are precise and no length in the file makes us
    // allocate more than the file holds.
    if !bytes.starts_with(NPY_MAGIC) {
        if NPY_MAGIC.starts_with(bytes) {
            return Err(DataError::NpyTruncated("the file ends inside the magic string".into()));
        }
        return Err(DataError::NpyMagic);
    }
    let (Some(&major), Some(&minor)) = (bytes.get(6), bytes.get(7)) else {
        return Err(DataError::NpyTruncated("the file ends before the version number".into()));
    };
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2 | 3, 0) => 4,
        _ => return Err(DataError::NpyVersion { major, minor }),
    };
    let Some(len_field) = bytes.get(8..8 + len_bytes) else {
        return Err(DataError::NpyTruncated("the file ends before the header length".into()));
    };
    let header_len = len_field.iter().rev().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if header_len > MAX_HEADER_LEN {
        return Err(DataError::NpyHeader(format!(
            "the header is {header_len} bytes long, at most {MAX_HEADER_LEN} are allowed"
        )));
    }
    let prefix = 8 + len_bytes;
    let Some(header_text) = bytes.get(prefix..prefix + header_len) else {
        return Err(DataError::NpyTruncated(format!(
            "the header needs {header_len} bytes, only {} follow",
            bytes.len() - prefix
        )));
    };
    check_header_text(header_text)?;

    let mut rest = bytes;
    let header = Header::from_reader(&mut rest).map_err(header_error)?;

    let elem = match header.type_descriptor.as_string() {
        Some(d) => Elem::from_descr(d).ok_or_else(|| DataError::NpyDtype(format!("{:?}", one_line(d))))?,
        None => {
            return Err(DataError::NpyDtype(format!(
                "{} (structured dtypes are not supported)",
                one_line(&header.type_descriptor.to_string())
            )));
        }
    };
    let shape = &header.shape;
    let (rows, cols) = match shape[..] {
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => {
            return Err(DataError::NpyDims { ndim: shape.len(), shape: shape_str(shape) });
        }
    };
    let Some(nbytes) = rows.checked_mul(cols).and_then(|n| n.checked_mul(elem.size())) else {
        return Err(DataError::NpyTooLarge { shape: shape_str(shape) });
    };
    let len = rows * cols;
    if len == 0 {
        return Err(DataError::NpyEmpty { shape: shape_str(shape) });
    }
    if rest.len() < nbytes {
        return Err(DataError::NpyTruncated(format!(
            "shape {} needs {nbytes} bytes of data, only {} follow the header",
            shape_str(shape),
            rest.len()
        )));
    }
    if rest.len() > nbytes {
        return Err(DataError::NpyTrailing { extra: rest.len() - nbytes });
    }

    let flat: Vec<f64> = match elem {
        Elem::F8 => read_elems::<f64>(rest, &header, len)?,
        Elem::F4 => widen(read_elems::<f32>(rest, &header, len)?),
        Elem::I1 => widen(read_elems::<i8>(rest, &header, len)?),
        Elem::I2 => widen(read_elems::<i16>(rest, &header, len)?),
        Elem::I4 => widen(read_elems::<i32>(rest, &header, len)?),
        Elem::I8 => read_elems::<i64>(rest, &header, len)?.into_iter().map(|v| v as f64).collect(),
        Elem::U1 => widen(read_elems::<u8>(rest, &header, len)?),
        Elem::U2 => widen(read_elems::<u16>(rest, &header, len)?),
        Elem::U4 => widen(read_elems::<u32>(rest, &header, len)?),
        Elem::U8 => read_elems::<u64>(rest, &header, len)?.into_iter().map(|v| v as f64).collect(),
    };
    let data = if header.layout == Layout::Fortran && rows > 1 && cols > 1 {
        // flat[j * rows + i] is element (i, j).
        let mut data = Vec::with_capacity(len);
        for i in 0..rows {
            data.extend((0..cols).map(|j| flat.get(j * rows + i).copied().unwrap_or(f64::NAN)));
        }
        data
    } else {
        flat
    };
    if let Some(k) = data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NpyNonFinite {
            row: k / cols + 1,
            column: k % cols + 1,
            value: data.get(k).copied().unwrap_or(f64::NAN),
        });
    }
    Ok(Mat::from_vec(rows, cols, data)?)
}

/// Builds `.npy` version 1.0 (or 2.0 if the header needs it) bytes from a dictionary text.
fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    // magic + version + header length field, then the dict, padding and '\n', to a
    // multiple of 64 bytes.
    let total_for = |prefix: usize| (prefix + dict.len() + 1).div_ceil(64) * 64;
    let v1 = total_for(10) - 10 <= usize::from(u16::MAX);
    let prefix = if v1 { 10 } else { 12 };
    let total = total_for(prefix);
    let header_len = total - prefix;
    let mut out = Vec::with_capacity(total + data.len());
    out.extend_from_slice(NPY_MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// Writes `m` as a NumPy `.npy` file (format 1.0): dtype little-endian float64 (`<f8`), C
/// order, shape `(rows, cols)`. [`parse_npy`] reads it back bit-identically.
pub fn write_npy(m: &Mat) -> Vec<u8> {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}", m.rows(), m.cols());
    let data: Vec<u8> = m.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes(&dict, &data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn csv_err(text: &str) -> String {
        parse_csv(text).unwrap_err().to_string()
    }

    fn npy_err(bytes: &[u8]) -> String {
        parse_npy(bytes).unwrap_err().to_string()
    }

    /// `.npy` bytes with an arbitrary dtype, order and shape (a Python tuple).
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        npy_bytes(&format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}"), data)
    }

    fn f8le(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn mat(rows: usize, cols: usize, v: &[f64]) -> Mat {
        Mat::from_vec(rows, cols, v.to_vec()).unwrap()
    }

    // ----- Format -----

    #[test]
    fn format_from_path_by_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.csv")).unwrap(), Format::Csv);
        assert_eq!(Format::from_path(Path::new("b.TXT")).unwrap(), Format::Csv);
        assert_eq!(Format::from_path(Path::new("b.Npy")).unwrap(), Format::Npy);
        assert_eq!(
            Format::from_path(Path::new("data.xlsx")).unwrap_err().to_string(),
            "unsupported file extension \".xlsx\" (expected .csv, .txt or .npy)"
        );
        assert_eq!(
            Format::from_path(Path::new("data")).unwrap_err().to_string(),
            "cannot tell the format of \"data\": it has no extension (expected .csv, .txt or .npy)"
        );
    }

    // ----- CSV -----

    #[test]
    fn csv_basic_matrix() {
        let m = parse_csv("1,2,3\n4.5,-6e-1,+.5\n").unwrap();
        assert_eq!(m, mat(2, 3, &[1.0, 2.0, 3.0, 4.5, -0.6, 0.5]));
    }

    #[test]
    fn csv_header_skipped_when_every_cell_is_non_numeric() {
        let m = parse_csv("x1, x2 ,\"y\"\n1,2,3\n").unwrap();
        assert_eq!(m, mat(1, 3, &[1.0, 2.0, 3.0]));
        // pandas writes an empty first header cell for the index column.
        let m = parse_csv(",a\n0,5\n1,6\n").unwrap();
        assert_eq!(m, mat(2, 2, &[0.0, 5.0, 1.0, 6.0]));
    }

    #[test]
    fn csv_partly_numeric_first_line_is_not_a_header() {
        assert_eq!(csv_err("a,1\n2,3\n"), "line 1, column 1: \"a\" is not a number");
    }

    #[test]
    fn csv_header_only_is_an_error() {
        assert_eq!(csv_err("a,b\n"), "no data rows: the file has only a header line");
    }

    #[test]
    fn csv_header_width_must_match_rows() {
        assert_eq!(csv_err("a,b,c\n1,2\n"), "line 2 has 2 columns, line 1 has 3");
    }

    #[test]
    fn csv_empty_file() {
        assert_eq!(csv_err(""), "empty file: no rows");
        assert_eq!(csv_err("\n \r\n\t\n"), "empty file: no rows");
        assert_eq!(parse_csv("\u{feff}").unwrap_err(), DataError::Empty);
    }

    #[test]
    fn csv_crlf_whitespace_bom_and_trailing_blank_lines() {
        let m = parse_csv("\u{feff} 1 ,\t2\r\n3,4\r\n\r\n  \n\n").unwrap();
        assert_eq!(m, mat(2, 2, &[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(parse_csv("1,2\n3,4").unwrap(), m);
    }

    #[test]
    fn csv_blank_line_before_last_row() {
        assert_eq!(csv_err("1,2\n\n3,4\n"), "line 2 is blank (blank lines are only allowed at the end of the file)");
        assert_eq!(csv_err("\n1\n").to_string(), DataError::BlankLine { line: 1 }.to_string());
    }

    #[test]
    fn csv_quoted_cells() {
        let m = parse_csv("\"a\",\"b,\"\"c\"\"\"\n\"1.5\", \" 2 \" \n").unwrap();
        assert_eq!(m, mat(1, 2, &[1.5, 2.0]));
        assert_eq!(csv_err("1,\"2\n"), "line 1, column 2: unterminated quote");
        assert_eq!(csv_err("1,\"2\"x\n"), "line 1, column 2: unexpected text after the closing quote");
    }

    #[test]
    fn csv_not_a_number_has_line_and_column() {
        assert_eq!(csv_err("1,2\n3,4\n5,abc\n"), "line 3, column 2: \"abc\" is not a number");
        let long = "x".repeat(100);
        let msg = csv_err(&format!("1,{long}\n"));
        assert!(msg.starts_with("line 1, column 2: \"xxxx") && msg.ends_with("...\" is not a number"));
        assert!(msg.len() < 100, "{msg}");
    }

    #[test]
    fn csv_ragged_rows() {
        assert_eq!(csv_err("1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3\n"), "line 4 has 3 columns, line 1 has 4");
        assert_eq!(csv_err("1,2\n1,2,3\n"), "line 2 has 3 columns, line 1 has 2");
    }

    #[test]
    fn csv_empty_cell() {
        assert_eq!(csv_err("1,2\n3,\n"), "line 2, column 2: empty cell");
        assert_eq!(csv_err("1,,2\n"), "line 1, column 2: empty cell");
    }

    #[test]
    fn csv_rejects_nan_and_infinity_in_every_spelling() {
        assert_eq!(csv_err("1\nNaN\n"), "line 2, column 1: NaN is not allowed");
        for s in ["nan", "NAN", "-nan", "+NaN", "\"nan\""] {
            assert_eq!(csv_err(&format!("1,2\n{s},3\n")), "line 2, column 1: NaN is not allowed", "{s}");
        }
        for s in ["inf", "Inf", "+inf", "infinity", "Infinity", "INF"] {
            assert_eq!(csv_err(&format!("0,{s}\n")), "line 1, column 2: infinity is not allowed", "{s}");
        }
        for s in ["-inf", "-Infinity", "-INFINITY"] {
            assert_eq!(csv_err(&format!("0,{s}\n")), "line 1, column 2: -infinity is not allowed", "{s}");
        }
        // A first line of only NaN/inf is data, not a header.
        assert_eq!(csv_err("nan,inf\n1,2\n"), "line 1, column 1: NaN is not allowed");
    }

    #[test]
    fn csv_rejects_overflowing_values() {
        assert_eq!(csv_err("1e400\n"), "line 1, column 1: \"1e400\" is out of range for a 64-bit float");
        assert_eq!(csv_err("2,-1e999\n"), "line 1, column 2: \"-1e999\" is out of range for a 64-bit float");
        // Underflow to zero (or a subnormal) is fine.
        assert_eq!(parse_csv("1e-400\n").unwrap(), mat(1, 1, &[0.0]));
    }

    #[test]
    fn csv_through_parse_matrix_checks_utf8() {
        assert_eq!(parse_matrix(Format::Csv, b"1,2\n3,4\n").unwrap(), mat(2, 2, &[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(
            parse_matrix(Format::Csv, b"1,2\n3,\xff\n").unwrap_err().to_string(),
            "line 2: not valid utf-8 text"
        );
        let npy_file = write_npy(&mat(1, 1, &[1.0]));
        assert_eq!(
            parse_matrix(Format::Csv, &npy_file).unwrap_err().to_string(),
            "line 1: not valid utf-8 text (this looks like a .npy file)"
        );
    }

    #[test]
    fn csv_writer_uses_shortest_round_trip_form() {
        let m = mat(2, 3, &[1.0, 2.5, -0.0, 1e300, 0.1, 5e-324]);
        assert_eq!(write_csv(&m), "1.0,2.5,-0.0\n1e300,0.1,5e-324\n");
        let back = parse_csv(&write_csv(&m)).unwrap();
        assert!(back.data().iter().zip(m.data()).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    // ----- .npy -----

    #[test]
    fn npy_writer_output_is_valid_and_aligned() {
        let m = mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = write_npy(&m);
        assert!(b.starts_with(b"\x93NUMPY\x01\x00"));
        assert_eq!((b.len() - 48) % 64, 0);
        let text = std::str::from_utf8(&b[10..b.len() - 48]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(text.ends_with(" \n"));
        assert_eq!(parse_npy(&b).unwrap(), m);
        assert_eq!(parse_matrix(Format::Npy, &b).unwrap(), m);
    }

    #[test]
    fn npy_big_endian_f8() {
        let data: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(parse_npy(&npy(">f8", false, "(1, 2)", &data)).unwrap(), mat(1, 2, &[1.5, -2.0]));
    }

    #[test]
    fn npy_fortran_order_becomes_row_major() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let b = npy("<f8", true, "(2, 3)", &f8le(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
        assert_eq!(parse_npy(&b).unwrap(), mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let b = npy("<f8", true, "(1, 3)", &f8le(&[1.0, 2.0, 3.0]));
        assert_eq!(parse_npy(&b).unwrap(), mat(1, 3, &[1.0, 2.0, 3.0]));
    }

    #[test]
    fn npy_one_d_is_a_column() {
        let b = npy("<f8", false, "(3,)", &f8le(&[1.0, 2.0, 3.0]));
        let m = parse_npy(&b).unwrap();
        assert_eq!(m, mat(3, 1, &[1.0, 2.0, 3.0]));
        assert_eq!(to_vector(m).unwrap(), vec![1.0, 2.0, 3.0]);
        let b = npy("<f8", true, "(2,)", &f8le(&[1.0, 2.0]));
        assert_eq!(parse_npy(&b).unwrap(), mat(2, 1, &[1.0, 2.0]));
    }

    #[test]
    fn npy_f4_and_integers_convert_to_f64() {
        let f4: Vec<u8> = [0.1f32, -3.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(parse_npy(&npy("<f4", false, "(2,)", &f4)).unwrap(), mat(2, 1, &[f64::from(0.1f32), -3.5]));
        let i4: Vec<u8> = [7i32, -8].iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(parse_npy(&npy(">i4", false, "(1, 2)", &i4)).unwrap(), mat(1, 2, &[7.0, -8.0]));
        let i8: Vec<u8> = [-1i64, 1 << 53, i64::MAX].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            parse_npy(&npy("<i8", false, "(3,)", &i8)).unwrap(),
            mat(3, 1, &[-1.0, 9007199254740992.0, 9223372036854775808.0])
        );
        assert_eq!(parse_npy(&npy("|u1", false, "(2,)", &[0, 255])).unwrap(), mat(2, 1, &[0.0, 255.0]));
    }

    #[test]
    fn npy_bad_magic() {
        let msg = "not a .npy file: it does not start with the magic string \\x93NUMPY";
        assert_eq!(npy_err(b"1,2,3\n4,5,6\n"), msg);
        assert_eq!(npy_err(b"\x93NUMPZ\x01\x00"), msg);
        assert_eq!(npy_err(b""), "truncated .npy file: the file ends inside the magic string");
    }

    #[test]
    fn npy_truncated_everywhere() {
        let b = write_npy(&mat(2, 2, &[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(npy_err(&b[..4]), "truncated .npy file: the file ends inside the magic string");
        assert_eq!(npy_err(&b[..7]), "truncated .npy file: the file ends before the version number");
        assert_eq!(npy_err(&b[..9]), "truncated .npy file: the file ends before the header length");
        assert_eq!(npy_err(&b[..40]), "truncated .npy file: the header needs 118 bytes, only 30 follow");
        assert_eq!(
            npy_err(&b[..b.len() - 3]),
            "truncated .npy file: shape (2, 2) needs 32 bytes of data, only 29 follow the header"
        );
        for k in 0..b.len() {
            assert!(parse_npy(&b[..k]).is_err(), "prefix {k}");
        }
    }

    #[test]
    fn npy_trailing_bytes() {
        let mut b = write_npy(&mat(1, 1, &[1.0]));
        b.extend_from_slice(&[0, 0, 0]);
        assert_eq!(npy_err(&b), "3 unexpected bytes after the end of the .npy array data");
    }

    #[test]
    fn npy_unsupported_version() {
        let mut b = write_npy(&mat(1, 1, &[1.0]));
        b[6] = 4;
        assert_eq!(npy_err(&b), "unsupported .npy format version 4.0 (expected 1.0, 2.0 or 3.0)");
    }

    #[test]
    fn npy_unsupported_dtypes() {
        let tail = " (expected float64, float32 or an integer type such as int32 or int64)";
        assert_eq!(npy_err(&npy("<c16", false, "(1,)", &[0; 16])), format!("unsupported .npy dtype \"<c16\"{tail}"));
        assert_eq!(npy_err(&npy("|b1", false, "(1,)", &[1])), format!("unsupported .npy dtype \"|b1\"{tail}"));
        assert_eq!(npy_err(&npy("<f2", false, "(1,)", &[0; 2])), format!("unsupported .npy dtype \"<f2\"{tail}"));
        let structured =
            npy_bytes("{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", &[0; 12]);
        let msg = npy_err(&structured);
        assert!(msg.starts_with("unsupported .npy dtype [") && msg.contains("structured dtypes"), "{msg}");
    }

    #[test]
    fn npy_wrong_dimensions() {
        assert_eq!(
            npy_err(&npy("<f8", false, "(2, 1, 1)", &f8le(&[1.0, 2.0]))),
            "3-d array with shape (2, 1, 1): only 1-d and 2-d arrays are supported"
        );
        assert_eq!(
            npy_err(&npy("<f8", false, "()", &f8le(&[1.0]))),
            "0-d array with shape (): only 1-d and 2-d arrays are supported"
        );
    }

    #[test]
    fn npy_empty_and_huge_shapes() {
        assert_eq!(npy_err(&npy("<f8", false, "(0, 3)", &[])), "empty array with shape (0, 3): no values");
        assert_eq!(npy_err(&npy("<f8", false, "(0,)", &[])), "empty array with shape (0,): no values");
        assert_eq!(
            npy_err(&npy("<f8", false, "(4294967296, 4294967296)", &[])),
            "array with shape (4294967296, 4294967296) is too large"
        );
        // A big but representable shape must not allocate: it is just truncated.
        assert_eq!(
            npy_err(&npy("<f8", false, "(1000000000000,)", &[0; 8])),
            "truncated .npy file: shape (1000000000000,) needs 8000000000000 bytes of data, only 8 follow the header"
        );
    }

    #[test]
    fn npy_rejects_nan_and_inf_with_row_and_column() {
        let v = [1.0, 2.0, 3.0, 4.0, f64::NAN, 6.0];
        assert_eq!(npy_err(&npy("<f8", false, "(2, 3)", &f8le(&v))), "row 2, column 2: NaN is not allowed");
        // The same matrix in Fortran order reports the same position.
        let f = [1.0, 4.0, 2.0, f64::NAN, 3.0, 6.0];
        assert_eq!(npy_err(&npy("<f8", true, "(2, 3)", &f8le(&f))), "row 2, column 2: NaN is not allowed");
        let f4: Vec<u8> = [1.0f32, f32::NEG_INFINITY].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(npy_err(&npy("<f4", false, "(2,)", &f4)), "row 2, column 1: -infinity is not allowed");
        assert_eq!(
            npy_err(&npy("<f8", false, "(1, 2)", &f8le(&[f64::INFINITY, 0.0]))),
            "row 1, column 1: infinity is not allowed"
        );
    }

    #[test]
    fn npy_malformed_headers_are_one_line_errors() {
        let cases: &[(&str, &str)] = &[
            ("{'descr': '<f8', 'shape': (1,), }", "invalid .npy header: missing key 'fortran_order'"),
            ("{'descr': '<f8', 'fortran_order': False, }", "invalid .npy header: missing key 'shape'"),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }",
                "invalid .npy header: invalid value 0 for 'fortran_order'",
            ),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", "invalid .npy header: unknown key 'x'"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)",
                "invalid .npy header: the header is not a valid python dict literal",
            ),
            ("('<f8', False, (1,))", "invalid .npy header: the header is not a python dict"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1.0,), }",
                "invalid .npy header: unexpected character \".\"",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
                "invalid .npy header: unexpected character \"-\"",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1e0 - 99,), }",
                "invalid .npy header: unexpected \"1e0\"",
            ),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (0x1,), }", "invalid .npy header: unexpected \"0x1\""),
            ("{'descr': b'<f8', 'fortran_order': False, 'shape': (1,), }", "invalid .npy header: unexpected \"b\""),
            ("{'descr': '<f8", "invalid .npy header: unterminated string"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': [[[[[[[[[]]]]]]]]]}",
                "invalid .npy header: brackets nested too deeply",
            ),
        ];
        for (dict, want) in cases {
            assert_eq!(npy_err(&npy_bytes(dict, &f8le(&[1.0]))), *want, "{dict}");
        }
        // Header without the final newline.
        let mut b = write_npy(&mat(1, 1, &[1.0]));
        let newline = b.len() - 9;
        b[newline] = b' ';
        assert_eq!(npy_err(&b), "invalid .npy header: the header does not end with a newline");
        // Header length beyond NumPy's limit.
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        b.extend_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(npy_err(&b), "invalid .npy header: the header is 100000 bytes long, at most 10000 are allowed");
        // Non-ASCII in a version 1.0 header.
        let b = npy("<f8\u{e9}", false, "(1,)", &f8le(&[1.0]));
        assert_eq!(npy_err(&b), "invalid .npy header: the header contains non-ascii characters");
    }

    #[test]
    fn npy_version_3_header_may_be_utf8() {
        let mut b = write_npy(&mat(1, 2, &[1.0, 2.0]));
        // Rewrite as version 3.0: a 4-byte header length.
        let header_len = u16::from_le_bytes([b[8], b[9]]);
        let mut v3 = b"\x93NUMPY\x03\x00".to_vec();
        v3.extend_from_slice(&u32::from(header_len).to_le_bytes());
        v3.extend_from_slice(&b.split_off(10));
        assert_eq!(parse_npy(&v3).unwrap(), mat(1, 2, &[1.0, 2.0]));
    }

    // ----- to_vector -----

    #[test]
    fn to_vector_accepts_rows_and_columns_only() {
        assert_eq!(to_vector(mat(3, 1, &[1.0, 2.0, 3.0])).unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(to_vector(mat(1, 3, &[1.0, 2.0, 3.0])).unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(
            to_vector(mat(2, 2, &[1.0, 2.0, 3.0, 4.0])).unwrap_err().to_string(),
            "expected a vector (n x 1 or 1 x n), got a 2x2 matrix"
        );
        assert_eq!(to_vector(parse_csv("b\n1\n2\n").unwrap()).unwrap(), vec![1.0, 2.0]);
    }

    // ----- properties -----

    fn finite_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |v| v.is_finite()),
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
            (-1000i32..1000).prop_map(f64::from),
        ]
    }

    fn finite_mat() -> impl Strategy<Value = Mat> {
        (1usize..8, 1usize..8).prop_flat_map(|(r, c)| {
            prop::collection::vec(finite_f64(), r * c).prop_map(move |v| Mat::from_vec(r, c, v).unwrap())
        })
    }

    fn same_bits(a: &Mat, b: &Mat) -> bool {
        a.rows() == b.rows()
            && a.cols() == b.cols()
            && a.data().iter().zip(b.data()).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn assert_one_line<T>(r: Result<T, DataError>) {
        if let Err(e) = r {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n') && !s.contains('\r'), "{s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn prop_csv_round_trip_is_bit_exact(m in finite_mat()) {
            let back = parse_csv(&write_csv(&m)).unwrap();
            prop_assert!(same_bits(&m, &back));
        }

        #[test]
        fn prop_npy_round_trip_is_bit_exact(m in finite_mat()) {
            let back = parse_npy(&write_npy(&m)).unwrap();
            prop_assert!(same_bits(&m, &back));
        }

        #[test]
        fn prop_random_text_never_panics(s in any::<String>()) {
            assert_one_line(parse_csv(&s));
        }

        #[test]
        fn prop_csv_like_text_never_panics(s in "[0-9eE+\\-., \"\r\n\tnaifNIyx]{0,120}") {
            assert_one_line(parse_csv(&s));
        }

        #[test]
        fn prop_random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
            assert_one_line(parse_npy(&b));
            assert_one_line(parse_matrix(Format::Csv, &b));
            let mut with_magic = b"\x93NUMPY\x01\x00".to_vec();
            with_magic.extend_from_slice(&b);
            assert_one_line(parse_npy(&with_magic));
        }

        #[test]
        fn prop_random_npy_headers_never_panic(
            dict in "[{}()\\[\\]',: 0-9a-zA-Z<>|.+\\-_\"\\\\\n]{0,100}",
            data in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            assert_one_line(parse_npy(&npy_bytes(&dict, &data)));
        }

        #[test]
        fn prop_near_valid_npy_headers_never_panic(
            descr in "[<>|=]?[fiucbBV?][0-9]{0,2}",
            shape in "\\(([0-9]{1,3}, ?){0,3}[0-9]{0,3}\\)",
            fortran in any::<bool>(),
            data in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            assert_one_line(parse_npy(&npy(&descr, fortran, &shape, &data)));
        }

        #[test]
        fn prop_corrupted_npy_never_panics(
            m in finite_mat(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut b = write_npy(&m);
            for (i, v) in flips {
                let k = i.index(b.len());
                b[k] = v;
            }
            assert_one_line(parse_npy(&b));
            assert_one_line(parse_npy(&b[..cut.index(b.len())]));
        }
    }
}
