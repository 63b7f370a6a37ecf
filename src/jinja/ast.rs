//! The Jinja2 syntax tree: expressions and template statements. Every node keeps the byte
//! offset it starts at in the template.

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    pub pos: Vec<Expr>,
    pub kw: Vec<(String, Expr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Concat,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    Name(String),
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Attr(Box<Expr>, String),
    Item(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, [Option<Box<Expr>>; 3]),
    Call(Box<Expr>, Args),
    /// `operand | name(args)`; the name as written (FQCN and `d` included).
    Filter(Box<Expr>, String, Args),
    /// `operand is [not] name(args)`.
    Test(Box<Expr>, String, Args, bool),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `then if cond else otherwise`.
    Cond(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    /// Text that must reach the output verbatim (`{% raw %}`).
    Raw(String),
    Output(Expr),
    If(Vec<(Expr, Vec<Node>)>, Option<Vec<Node>>),
    For(Box<For>),
    Set(String, Expr),
    /// tera's `set_global`, kept for templates written in tera's syntax.
    SetGlobal(String, Expr),
    SetBlock(String, Vec<Node>),
    Break,
    Continue,
    /// `{% block name %}`: without `extends`, its body in place.
    Block(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct For {
    pub targets: Vec<String>,
    pub iter: Expr,
    pub cond: Option<Expr>,
    pub body: Vec<Node>,
    pub otherwise: Option<Vec<Node>>,
    pub pos: usize,
}
