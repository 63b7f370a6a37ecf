//! `castellan inventory`: the inventory as `ansible-inventory --list/--host` prints it (vault
//! values masked as `<redacted>`).
use super::InventoryArgs;
use crate::error::{Error, Result};
use crate::inventory::Inventory;

pub fn run(args: InventoryArgs) -> Result<i32> {
    super::vault::load(&args.vault)?;
    let inv = Inventory::load(&args.inventory)?;
    let doc = match &args.host {
        Some(h) => inv
            .host_json(h)
            .ok_or_else(|| Error::Usage(format!("host `{h}` is not in the inventory")))?,
        None => inv.list_json(),
    };
    // Vault values are shown masked, never decrypted.
    let doc = crate::report::secret::mask_value(&doc);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
