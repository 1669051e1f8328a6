//! Adapts a parsed template to data where Go would hold structs: map keys that are object
//! identifiers (`$resource.Kind` in `range $resource, $changes := .Changed.Objects`) and
//! `.AutomationObject`, which prints as `namespace/name` like Go's `NamespacedName`.

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, PipeNode, Pos, SmolStr};

/// Function turning an encoded map key into its object identifier fields.
pub const OBJECT_KEY_FN: &str = "__sluiceObjectKey";
/// Function printing a map key as Go prints it.
pub const PRINT_KEY_FN: &str = "__sluicePrintKey";

/// Rewrites `tree` in place.
pub fn rewrite(tree: &mut ListNode) {
    rewrite_list(tree, &[]);
}

/// Walks `list` with `keys`, the range key variables in scope.
fn rewrite_list(list: &mut ListNode, keys: &[SmolStr]) {
    let mut keys = keys.to_vec();
    for node in &mut list.nodes {
        match node {
            Node::List(inner) => rewrite_list(inner, &keys),
            Node::Action(action) => {
                let printing = action.pipe.decl.is_empty();
                rewrite_pipe(&mut action.pipe, &keys, printing);
                forget_declared(&action.pipe, &mut keys);
            }
            Node::If(branch) | Node::With(branch) => {
                rewrite_pipe(&mut branch.pipe, &keys, false);
                let mut inner = keys.clone();
                forget_declared(&branch.pipe, &mut inner);
                rewrite_list(&mut branch.body, &inner);
                if let Some(else_body) = &mut branch.else_body {
                    rewrite_list(else_body, &keys);
                }
            }
            Node::Range(range) => {
                rewrite_pipe(&mut range.pipe, &keys, false);
                let mut inner = keys.clone();
                forget_declared(&range.pipe, &mut inner);
                if let [key, _value] = range.pipe.decl.as_slice() {
                    inner.push(key.clone());
                }
                rewrite_list(&mut range.body, &inner);
                if let Some(else_body) = &mut range.else_body {
                    rewrite_list(else_body, &keys);
                }
            }
            Node::Template(template) => {
                if let Some(pipe) = &mut template.pipe {
                    rewrite_pipe(pipe, &keys, true);
                }
            }
            Node::Define(define) => rewrite_list(&mut define.body, &[]),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

/// A `:=` declaration of a range key variable hides it from the rest of the scope.
fn forget_declared(pipe: &PipeNode, keys: &mut Vec<SmolStr>) {
    if !pipe.is_assign {
        keys.retain(|key| !pipe.decl.contains(key));
    }
}

/// Rewrites the expressions of `pipe`; `printing` when its value is printed or passed on.
fn rewrite_pipe(pipe: &mut PipeNode, keys: &[SmolStr], printing: bool) {
    for command in &mut pipe.commands {
        for arg in &mut command.args {
            rewrite_expr(arg, keys, printing);
        }
    }
}

fn rewrite_expr(expr: &mut Expr, keys: &[SmolStr], printing: bool) {
    match expr {
        Expr::Variable(pos, name, chain) if keys.contains(name) => {
            let pos = *pos;
            let key = Expr::Variable(pos, name.clone(), Vec::new());
            *expr = if chain.is_empty() {
                call(pos, PRINT_KEY_FN, key)
            } else {
                Expr::Chain(
                    pos,
                    Box::new(call(pos, OBJECT_KEY_FN, key)),
                    std::mem::take(chain),
                )
            };
        }
        Expr::Field(_, chain) if printing && is_automation_object(chain, None) => {
            chain.push(SmolStr::new("String"));
        }
        Expr::Variable(_, name, chain) if printing && is_automation_object(chain, Some(name)) => {
            chain.push(SmolStr::new("String"));
        }
        Expr::Pipe(_, pipe) => rewrite_pipe(pipe, keys, true),
        Expr::Chain(_, inner, _) => match inner.as_mut() {
            Expr::Pipe(_, pipe) => rewrite_pipe(pipe, keys, false),
            other => rewrite_expr(other, keys, false),
        },
        _ => {}
    }
}

/// `.AutomationObject` or `$.AutomationObject`, with no field after it.
fn is_automation_object(chain: &[SmolStr], variable: Option<&SmolStr>) -> bool {
    variable.is_none_or(|name| name == "$") && chain.len() == 1 && chain[0] == "AutomationObject"
}

/// `(function argument)` as an expression.
fn call(pos: Pos, function: &str, argument: Expr) -> Expr {
    Expr::Pipe(
        pos,
        PipeNode {
            pos,
            decl: Vec::new(),
            commands: vec![CommandNode {
                pos,
                args: vec![Expr::Identifier(pos, SmolStr::new(function)), argument],
            }],
            is_assign: false,
        },
    )
}

/// The first function `tree` calls that `defined` does not know, as Go reports at parse time.
pub fn undefined_function(tree: &ListNode, defined: &dyn Fn(&str) -> bool) -> Option<String> {
    let mut found = None;
    visit_list(tree, &mut |expr| {
        if let Expr::Identifier(_, name) = expr
            && found.is_none()
            && !defined(name)
        {
            found = Some(name.to_string());
        }
    });
    found
}

fn visit_list(list: &ListNode, visit: &mut dyn FnMut(&Expr)) {
    for node in &list.nodes {
        match node {
            Node::List(inner) => visit_list(inner, visit),
            Node::Action(action) => visit_pipe(&action.pipe, visit),
            Node::If(branch) | Node::With(branch) | Node::Range(branch) => {
                visit_pipe(&branch.pipe, visit);
                visit_list(&branch.body, visit);
                if let Some(else_body) = &branch.else_body {
                    visit_list(else_body, visit);
                }
            }
            Node::Template(template) => {
                if let Some(pipe) = &template.pipe {
                    visit_pipe(pipe, visit);
                }
            }
            Node::Define(define) => visit_list(&define.body, visit),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

fn visit_pipe(pipe: &PipeNode, visit: &mut dyn FnMut(&Expr)) {
    for arg in pipe.commands.iter().flat_map(|command| &command.args) {
        visit_expr(arg, visit);
    }
}

fn visit_expr(expr: &Expr, visit: &mut dyn FnMut(&Expr)) {
    visit(expr);
    match expr {
        Expr::Pipe(_, pipe) => visit_pipe(pipe, visit),
        Expr::Chain(_, inner, _) => visit_expr(inner, visit),
        _ => {}
    }
}
