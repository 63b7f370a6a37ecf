//! The parser of Jinja2's expression grammar (jinja2/parser.py's precedence): inline `if`,
//! `or`, `and`, `not`, comparisons (chained, `in`, `not in`), `+ -`, `~`, `* / // %`, `**`,
//! unary minus, then postfix access (`.a`, `[k]`, `[a:b:c]`, calls) and filters and tests.
use super::ast::{Args, BinOp, CmpOp, Expr, ExprKind};
use super::lexer::{Tok, Token};
use super::JinjaError;

pub struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl<'a> Parser<'a> {
    pub fn new(toks: &'a [Token]) -> Self {
        Parser { toks, i: 0 }
    }

    pub fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::End, |t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> &Tok {
        self.toks.get(self.i + k).map_or(&Tok::End, |t| &t.tok)
    }

    pub fn pos(&self) -> usize {
        self.toks
            .get(self.i)
            .or(self.toks.last())
            .map_or(0, |t| t.pos)
    }

    pub fn advance(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    pub fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    pub fn is_name(&self, n: &str) -> bool {
        matches!(self.peek(), Tok::Name(x) if x == n)
    }

    pub fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.i += 1;
        }
        yes
    }

    pub fn eat_name(&mut self, n: &str) -> bool {
        let yes = self.is_name(n);
        if yes {
            self.i += 1;
        }
        yes
    }

    pub fn err<T>(&self, msg: impl Into<String>) -> Result<T, JinjaError> {
        Err(JinjaError::new(self.pos(), msg))
    }

    fn unexpected<T>(&self, wanted: &str) -> Result<T, JinjaError> {
        let got = match self.peek() {
            Tok::Name(n) => format!("`{n}`"),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Int(n) => n.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Op(o) => format!("`{o}`"),
            Tok::End => "the end of the tag".to_string(),
        };
        self.err(format!("expected {wanted}, found {got}"))
    }

    pub fn expect_op(&mut self, op: &str) -> Result<(), JinjaError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            self.unexpected(&format!("`{op}`"))
        }
    }

    pub fn name(&mut self) -> Result<String, JinjaError> {
        match self.peek().clone() {
            Tok::Name(n) => {
                self.i += 1;
                Ok(n)
            }
            _ => self.unexpected("a name"),
        }
    }

    pub fn end(&mut self) -> Result<(), JinjaError> {
        if matches!(self.peek(), Tok::End) {
            Ok(())
        } else {
            self.unexpected("the end of the tag")
        }
    }

    /// A whole expression, inline `if` included.
    pub fn expr(&mut self) -> Result<Expr, JinjaError> {
        let mut e = self.or()?;
        while self.is_name("if") {
            let pos = e.pos;
            self.i += 1;
            let cond = self.or()?;
            let otherwise = if self.eat_name("else") {
                Some(bx(self.expr()?))
            } else {
                None
            };
            e = Expr {
                kind: ExprKind::Cond(bx(cond), bx(e), otherwise),
                pos,
            };
        }
        Ok(e)
    }

    /// An expression without inline `if` (the iterable of a `for` loop).
    pub fn expr_no_cond(&mut self) -> Result<Expr, JinjaError> {
        self.or()
    }

    fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
        let pos = l.pos;
        Expr {
            kind: ExprKind::Bin(op, bx(l), bx(r)),
            pos,
        }
    }

    fn or(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.and()?;
        while self.eat_name("or") {
            let r = self.and()?;
            l = Self::bin(BinOp::Or, l, r);
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.not()?;
        while self.eat_name("and") {
            let r = self.not()?;
            l = Self::bin(BinOp::And, l, r);
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, JinjaError> {
        if self.is_name("not") {
            let pos = self.pos();
            self.i += 1;
            let e = self.not()?;
            return Ok(Expr {
                kind: ExprKind::Not(bx(e)),
                pos,
            });
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, JinjaError> {
        let first = self.math1()?;
        let mut ops = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::Op("==") => CmpOp::Eq,
                Tok::Op("!=") => CmpOp::Ne,
                Tok::Op("<") => CmpOp::Lt,
                Tok::Op("<=") => CmpOp::Le,
                Tok::Op(">") => CmpOp::Gt,
                Tok::Op(">=") => CmpOp::Ge,
                Tok::Name(n) if n == "in" => CmpOp::In,
                Tok::Name(n)
                    if n == "not" && matches!(self.peek_at(1), Tok::Name(m) if m == "in") =>
                {
                    self.i += 1;
                    CmpOp::NotIn
                }
                _ => break,
            };
            self.i += 1;
            ops.push((op, self.math1()?));
        }
        if ops.is_empty() {
            return Ok(first);
        }
        let pos = first.pos;
        Ok(Expr {
            kind: ExprKind::Compare(bx(first), ops),
            pos,
        })
    }

    fn math1(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.concat()?;
        loop {
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                break;
            };
            let r = self.concat()?;
            l = Self::bin(op, l, r);
        }
        Ok(l)
    }

    fn concat(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.math2()?;
        while self.eat_op("~") {
            let r = self.math2()?;
            l = Self::bin(BinOp::Concat, l, r);
        }
        Ok(l)
    }

    fn math2(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.pow()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("//") => BinOp::FloorDiv,
                Tok::Op("%") => BinOp::Mod,
                _ => break,
            };
            self.i += 1;
            let r = self.pow()?;
            l = Self::bin(op, l, r);
        }
        Ok(l)
    }

    fn pow(&mut self) -> Result<Expr, JinjaError> {
        let mut l = self.unary(true)?;
        while self.eat_op("**") {
            let r = self.unary(true)?;
            l = Self::bin(BinOp::Pow, l, r);
        }
        Ok(l)
    }

    fn unary(&mut self, with_filter: bool) -> Result<Expr, JinjaError> {
        let pos = self.pos();
        let e = if self.eat_op("-") {
            let inner = self.unary(false)?;
            match inner.kind {
                ExprKind::Int(n) => Expr {
                    kind: ExprKind::Int(-n),
                    pos,
                },
                ExprKind::Float(f) => Expr {
                    kind: ExprKind::Float(-f),
                    pos,
                },
                _ => Expr {
                    kind: ExprKind::Neg(bx(inner)),
                    pos,
                },
            }
        } else if self.eat_op("+") {
            self.unary(false)?
        } else {
            let p = self.primary()?;
            self.postfix(p)?
        };
        if with_filter {
            self.filters(e)
        } else {
            Ok(e)
        }
    }

    fn primary(&mut self) -> Result<Expr, JinjaError> {
        let pos = self.pos();
        let kind = match self.advance() {
            Tok::Name(n) => match n.as_str() {
                "true" | "True" => ExprKind::Bool(true),
                "false" | "False" => ExprKind::Bool(false),
                "none" | "None" => ExprKind::None,
                _ => ExprKind::Name(n),
            },
            Tok::Str(mut s) => {
                // Adjacent strings are one string, as in Python.
                while let Tok::Str(more) = self.peek().clone() {
                    self.i += 1;
                    s.push_str(&more);
                }
                ExprKind::Str(s)
            }
            Tok::Int(n) => ExprKind::Int(n),
            Tok::Float(f) => ExprKind::Float(f),
            Tok::Op("(") => {
                if self.eat_op(")") {
                    ExprKind::List(Vec::new())
                } else {
                    let first = self.expr()?;
                    if self.eat_op(")") {
                        return Ok(first);
                    }
                    let mut items = vec![first];
                    while self.eat_op(",") {
                        if self.is_op(")") {
                            break;
                        }
                        items.push(self.expr()?);
                    }
                    self.expect_op(")")?;
                    ExprKind::List(items)
                }
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.expr()?);
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("]")?;
                ExprKind::List(items)
            }
            Tok::Op("{") => {
                let mut items = Vec::new();
                while !self.is_op("}") {
                    let k = self.expr()?;
                    self.expect_op(":")?;
                    let v = self.expr()?;
                    items.push((k, v));
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("}")?;
                ExprKind::Dict(items)
            }
            _ => {
                self.i = self.i.saturating_sub(1);
                return self.unexpected("an expression");
            }
        };
        Ok(Expr { kind, pos })
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, JinjaError> {
        loop {
            let pos = e.pos;
            if self.eat_op(".") {
                let attr = match self.advance() {
                    Tok::Name(n) => n,
                    // `x.1` is `x[1]` in Jinja2.
                    Tok::Int(n) => {
                        let at = self.pos();
                        let key = Expr {
                            kind: ExprKind::Int(n),
                            pos: at,
                        };
                        e = Expr {
                            kind: ExprKind::Item(bx(e), bx(key)),
                            pos,
                        };
                        continue;
                    }
                    _ => {
                        self.i -= 1;
                        return self.unexpected("an attribute name");
                    }
                };
                e = Expr {
                    kind: ExprKind::Attr(bx(e), attr),
                    pos,
                };
            } else if self.is_op("[") {
                self.i += 1;
                e = self.subscript(e)?;
            } else if self.is_op("(") {
                let args = self.call_args()?;
                e = Expr {
                    kind: ExprKind::Call(bx(e), args),
                    pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    fn subscript(&mut self, obj: Expr) -> Result<Expr, JinjaError> {
        let pos = obj.pos;
        let mut parts: [Option<Box<Expr>>; 3] = [None, None, None];
        let mut slice = false;
        for (k, part) in parts.iter_mut().enumerate() {
            if !self.is_op(":") && !self.is_op("]") {
                *part = Some(bx(self.expr()?));
            }
            if k < 2 && self.eat_op(":") {
                slice = true;
            } else {
                break;
            }
        }
        self.expect_op("]")?;
        if slice {
            return Ok(Expr {
                kind: ExprKind::Slice(bx(obj), parts),
                pos,
            });
        }
        match parts[0].take() {
            Some(k) => Ok(Expr {
                kind: ExprKind::Item(bx(obj), k),
                pos,
            }),
            None => self.err("empty subscript"),
        }
    }

    /// `( args )`: positional then keyword arguments.
    pub fn call_args(&mut self) -> Result<Args, JinjaError> {
        self.expect_op("(")?;
        let mut args = Args::default();
        while !self.is_op(")") {
            if let (Tok::Name(n), Tok::Op("=")) = (self.peek().clone(), self.peek_at(1).clone()) {
                self.i += 2;
                args.kw.push((n, self.expr()?));
            } else {
                if !args.kw.is_empty() {
                    return self.err("a positional argument after a keyword argument");
                }
                args.pos.push(self.expr()?);
            }
            if !self.eat_op(",") {
                break;
            }
        }
        self.expect_op(")")?;
        Ok(args)
    }

    /// A filter or test name, dotted for fully qualified names (`ansible.builtin.quote`).
    fn dotted_name(&mut self) -> Result<String, JinjaError> {
        let mut n = self.name()?;
        while self.is_op(".") && matches!(self.peek_at(1), Tok::Name(_)) {
            self.i += 1;
            n.push('.');
            n.push_str(&self.name()?);
        }
        Ok(n)
    }

    fn filters(&mut self, mut e: Expr) -> Result<Expr, JinjaError> {
        loop {
            if self.eat_op("|") {
                let pos = self.pos();
                let name = self.dotted_name()?;
                let args = if self.is_op("(") {
                    self.call_args()?
                } else {
                    Args::default()
                };
                e = Expr {
                    kind: ExprKind::Filter(bx(e), name, args),
                    pos,
                };
            } else if self.is_name("is") {
                self.i += 1;
                let negated = self.eat_name("not");
                let pos = self.pos();
                let name = self.dotted_name()?;
                let args = if self.is_op("(") {
                    self.call_args()?
                } else if self.test_arg_follows() {
                    Args {
                        pos: vec![self.unary(false).and_then(|p| self.postfix(p))?],
                        kw: Vec::new(),
                    }
                } else {
                    Args::default()
                };
                e = Expr {
                    kind: ExprKind::Test(bx(e), name, args, negated),
                    pos,
                };
            } else if self.is_op("(") {
                let pos = e.pos;
                let args = self.call_args()?;
                e = Expr {
                    kind: ExprKind::Call(bx(e), args),
                    pos,
                };
            } else {
                return Ok(e);
            }
        }
    }

    /// `x is divisibleby 3`, `x is sameas none`: a test takes one argument without brackets.
    fn test_arg_follows(&self) -> bool {
        match self.peek() {
            Tok::Name(n) => !matches!(
                n.as_str(),
                "else" | "or" | "and" | "if" | "is" | "in" | "not"
            ),
            Tok::Str(_) | Tok::Int(_) | Tok::Float(_) => true,
            Tok::Op(o) => matches!(*o, "[" | "{" | "-"),
            Tok::End => false,
        }
    }
}
