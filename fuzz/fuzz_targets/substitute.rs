//! `${…}` substitution, the local pass and the container pass, on any text: no panic, and a
//! text without `${` comes back as it was.
#![no_main]

use std::collections::HashMap;

use dcx::config::substitute::{
    ContainerEnv, LocalContext, substitute_container_str, substitute_local_str,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = HashMap::from([("HOME".to_owned(), "/home/me".to_owned())]);
    let mut ctx = LocalContext::new(env);
    ctx.workspace_folder = Some("/home/me/project".into());
    ctx.container_workspace_folder = Some("/workspaces/${localWorkspaceFolderBasename}".into());
    let local = substitute_local_str(&text, &ctx);
    let container = ContainerEnv::from_list(&["PATH=/bin", "EMPTY="]);
    let pass = substitute_container_str(&text, &container, None);
    if !text.contains("${") {
        assert_eq!(local.ok().as_deref(), Some(&*text));
        assert_eq!(pass.ok().as_deref(), Some(&*text));
    }
});
