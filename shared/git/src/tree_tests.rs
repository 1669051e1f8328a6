use super::*;
use crate::pack::object_id;

fn add(objects: &mut Objects, kind: Kind, data: Vec<u8>) -> ObjectId {
    let id = object_id(kind, &data);
    objects.insert(id, (kind, data));
    id
}

fn tree(objects: &mut Objects, entries: &[(&str, &str, ObjectId)]) -> ObjectId {
    let mut data = Vec::new();
    for (mode, name, id) in entries {
        data.extend(format!("{mode} {name}\0").as_bytes());
        data.extend(id);
    }
    add(objects, Kind::Tree, data)
}

#[test]
fn writes_files_links_and_directories() {
    let mut objects = Objects::new();
    let text = add(&mut objects, Kind::Blob, b"hello\n".to_vec());
    let empty = add(&mut objects, Kind::Blob, Vec::new());
    let target = add(&mut objects, Kind::Blob, b"../a.txt".to_vec());
    let nested = tree(
        &mut objects,
        &[("100644", "b.txt", text), ("120000", "link", target)],
    );
    let root = tree(
        &mut objects,
        &[
            ("100644", "a.txt", text),
            ("100755", "run.sh", text),
            ("100644", "empty", empty),
            ("40000", "dir", nested),
            ("160000", "module", [1; 20]),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("checkout");
    write(&objects, &root, &dir).unwrap();
    assert_eq!(std::fs::read(dir.join("dir/b.txt")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read(dir.join("empty")).unwrap(), b"");
    assert!(dir.join("module").is_dir());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode();
        assert_ne!(mode("run.sh") & 0o111, 0);
        assert_eq!(mode("a.txt") & 0o111, 0);
        let link = std::fs::read_link(dir.join("dir/link")).unwrap();
        assert_eq!(link, Path::new("../a.txt"));
    }
}

#[test]
fn leaves_unusual_trees_to_git() {
    let mut objects = Objects::new();
    let text = add(&mut objects, Kind::Blob, b"x".to_vec());
    let crlf = add(&mut objects, Kind::Blob, b"*.sh text eol=crlf\n".to_vec());
    let benign = add(&mut objects, Kind::Blob, b"*.png binary\n# text\n".to_vec());
    for name in ["..", ".git", ".GIT", ".git.", "a\\b"] {
        let root = tree(&mut objects, &[("100644", name, text)]);
        let dir = tempfile::tempdir().unwrap().path().join("c");
        assert!(
            matches!(write(&objects, &root, &dir), Err(TreeError::Unusual(_))),
            "{name}"
        );
        assert!(!dir.exists());
    }
    let root = tree(&mut objects, &[("100644", ".gitattributes", crlf)]);
    let dir = tempfile::tempdir().unwrap();
    assert!(write(&objects, &root, &dir.path().join("c")).is_err());
    let root = tree(&mut objects, &[("100644", ".gitattributes", benign)]);
    assert!(write(&objects, &root, &dir.path().join("d")).is_ok());
    let root = tree(
        &mut objects,
        &[("100644", "a", text), ("40000", "a", [2; 20])],
    );
    assert!(write(&objects, &root, &dir.path().join("e")).is_err());
}
