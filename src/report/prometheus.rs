//! The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
//! reads it: per metric family one `# HELP` and one `# TYPE` line, then its samples
//! `name{label="value",...} value`. Label values escape `\`, `"` and newlines; HELP text escapes
//! `\` and newlines. Families are written in the order given, each name once.

/// One metric family: a name, its help text, its type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

/// The metric types castellan writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Gauge,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
        }
    }
}

/// One sample: its labels (names must match `[a-zA-Z_][a-zA-Z0-9_]*`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Family {
    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }
}

fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf` as the format spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The families as exposition text (a family without samples still gets its HELP and TYPE).
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        out.push_str(&format!("# HELP {} {}\n", f.name, escape_help(f.help)));
        out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind.as_str()));
        for s in &f.samples {
            out.push_str(f.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                out.push('{');
                out.push_str(&labels.join(","));
                out.push('}');
            }
            out.push(' ');
            out.push_str(&number(s.value));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_help_type_and_escaped_labels() {
        let mut f = Family::gauge("castellan_x", "A help\\text\nwith a newline");
        f.push(
            vec![
                ("host", "db1".into()),
                ("subject", "CN=a \"b\"\\c\nd".into()),
            ],
            -3.0,
        );
        f.push(vec![], 1.5);
        let empty = Family::gauge("castellan_y", "none yet");
        assert_eq!(
            render(&[f, empty]),
            "# HELP castellan_x A help\\\\text\\nwith a newline\n\
             # TYPE castellan_x gauge\n\
             castellan_x{host=\"db1\",subject=\"CN=a \\\"b\\\"\\\\c\\nd\"} -3\n\
             castellan_x 1.5\n\
             # HELP castellan_y none yet\n\
             # TYPE castellan_y gauge\n"
        );
    }

    #[test]
    fn numbers_as_the_format_spells_them() {
        assert_eq!(number(1_767_225_600.0), "1767225600");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.25), "0.25");
    }
}
