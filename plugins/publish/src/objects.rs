//! Git's object model, enough for a first commit: blobs, trees and a commit, each
//! named by the SHA-1 of its canonical encoding (`<kind> <size>\0<content>`).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use sha1::{Digest, Sha1};

/// An object name: 20 bytes of SHA-1, shown as 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// The all-zero name git uses for "no object" (a ref that does not exist yet).
    pub const ZERO: Self = Self([0; 20]);

    pub fn parse_hex(hex: &str) -> Option<Self> {
        if hex.len() != 40 {
            return None;
        }
        let mut bytes = [0; 20];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(bytes))
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Commit,
    Tree,
    Blob,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
        }
    }

    /// The type number in a pack entry's header.
    pub fn pack_type(self) -> u8 {
        match self {
            Kind::Commit => 1,
            Kind::Tree => 2,
            Kind::Blob => 3,
        }
    }
}

/// An encoded object and its name.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: Kind,
    pub data: Vec<u8>,
    pub id: ObjectId,
}

impl Object {
    pub fn new(kind: Kind, data: Vec<u8>) -> Self {
        let mut hasher = Sha1::new();
        hasher.update(format!("{} {}\0", kind.name(), data.len()));
        hasher.update(&data);
        Self {
            kind,
            id: ObjectId(hasher.finalize().into()),
            data,
        }
    }
}

/// What a tree entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// File contents and whether any execute bit is set.
    File { content: Vec<u8>, executable: bool },
    /// A symbolic link and its target.
    Symlink { target: String },
    /// A directory.
    Directory(Directory),
}

/// A directory's entries by name.
pub type Directory = BTreeMap<String, Entry>;

/// Encodes `root` and everything under it; returns the root tree's name and adds every
/// object to `objects`, each once.
pub fn write_tree(root: &Directory, objects: &mut Vec<Object>) -> ObjectId {
    let mut seen = objects.iter().map(|o| o.id).collect();
    write_tree_into(root, objects, &mut seen)
}

fn write_tree_into(
    root: &Directory,
    objects: &mut Vec<Object>,
    seen: &mut HashSet<ObjectId>,
) -> ObjectId {
    // Git orders entries by name, a directory's name compared as if it ended in '/'.
    let mut entries: Vec<(Vec<u8>, &str, ObjectId)> = Vec::with_capacity(root.len());
    for (name, entry) in root {
        let (mode, id) = match entry {
            Entry::File {
                content,
                executable,
            } => {
                let blob = push(objects, seen, Object::new(Kind::Blob, content.clone()));
                (if *executable { "100755" } else { "100644" }, blob)
            }
            Entry::Symlink { target } => {
                let blob = push(
                    objects,
                    seen,
                    Object::new(Kind::Blob, target.as_bytes().to_vec()),
                );
                ("120000", blob)
            }
            Entry::Directory(children) => ("40000", write_tree_into(children, objects, seen)),
        };
        entries.push((sort_key(name, entry), mode, id));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut data = Vec::new();
    for (key, mode, id) in entries {
        let name = match key.last() {
            Some(b'/') => &key[..key.len() - 1],
            _ => &key[..],
        };
        data.extend_from_slice(mode.as_bytes());
        data.push(b' ');
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(&id.0);
    }
    push(objects, seen, Object::new(Kind::Tree, data))
}

fn sort_key(name: &str, entry: &Entry) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    if matches!(entry, Entry::Directory(_)) {
        key.push(b'/');
    }
    key
}

/// Adds `object` unless an identical one is already there; returns its name.
fn push(objects: &mut Vec<Object>, seen: &mut HashSet<ObjectId>, object: Object) -> ObjectId {
    let id = object.id;
    if seen.insert(id) {
        objects.push(object);
    }
    id
}

/// Who made a commit, and when (seconds since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
    pub time: i64,
}

impl Signature {
    /// `Name <email> <time> +0000`; git drops `<`, `>` and line breaks from both parts.
    fn encode(&self) -> String {
        let clean = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
                .collect::<String>()
                .trim()
                .to_owned()
        };
        format!(
            "{} <{}> {} +0000",
            clean(&self.name),
            clean(&self.email),
            self.time
        )
    }
}

/// A root commit (no parents) of `tree`; the message ends with a line break, as git
/// writes it.
pub fn root_commit(tree: ObjectId, author: &Signature, message: &str) -> Object {
    let mut message = message.replace('\0', "");
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let author = author.encode();
    let text = format!("tree {tree}\nauthor {author}\ncommitter {author}\n\n{message}");
    Object::new(Kind::Commit, text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The names below are what `git hash-object` and `git mktree` print for the same
    // content.

    #[test]
    fn blob_names_match_git() {
        let blob = Object::new(Kind::Blob, b"hello\n".to_vec());
        assert_eq!(blob.id.to_hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
        let empty = Object::new(Kind::Blob, Vec::new());
        assert_eq!(
            empty.id.to_hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn the_empty_tree_matches_git() {
        let mut objects = Vec::new();
        let tree = write_tree(&Directory::new(), &mut objects);
        assert_eq!(tree.to_hex(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    }

    #[test]
    fn directories_sort_as_if_their_name_ended_in_a_slash() {
        // "a.txt" < "a/" < "a0" in git's order ('.' < '/' < '0').
        let file = |c: &[u8]| Entry::File {
            content: c.to_vec(),
            executable: false,
        };
        let mut root = Directory::new();
        root.insert("a0".into(), file(b"x"));
        root.insert("a.txt".into(), file(b"y"));
        root.insert(
            "a".into(),
            Entry::Directory(Directory::from([("b".into(), file(b"z"))])),
        );
        let mut objects = Vec::new();
        let tree = write_tree(&root, &mut objects);
        let data = &objects.iter().find(|o| o.id == tree).unwrap().data;
        let names: Vec<String> = data
            .split(|b| *b == 0)
            .filter_map(|chunk| {
                let text = String::from_utf8_lossy(chunk);
                text.rsplit_once(' ').map(|(_, name)| name.to_owned())
            })
            .collect();
        assert_eq!(names, ["a.txt", "a", "a0"]);
    }

    #[test]
    fn identical_contents_are_stored_once() {
        let file = Entry::File {
            content: b"same".to_vec(),
            executable: false,
        };
        let root = Directory::from([("one".into(), file.clone()), ("two".into(), file)]);
        let mut objects = Vec::new();
        write_tree(&root, &mut objects);
        assert_eq!(objects.len(), 2, "one blob and one tree");
    }

    #[test]
    fn commits_strip_angle_brackets_from_signatures_and_end_with_a_newline() {
        let author = Signature {
            name: "Ada <Lovelace>".into(),
            email: "ada@example.com".into(),
            time: 1_700_000_000,
        };
        let commit = root_commit(ObjectId::ZERO, &author, "Initial commit");
        let text = String::from_utf8(commit.data).unwrap();
        assert!(text.contains("author Ada Lovelace <ada@example.com> 1700000000 +0000\n"));
        assert!(text.ends_with("\n\nInitial commit\n"), "{text}");
    }
}
