//! The datastore conformance suite: the same tests against both backends, SQLite (a file in a
//! temporary directory) and etcd (a real etcd 3.4 on free loopback ports, one per test).
//! Failure tests set each backend's failure up its own way and assert the same things.

mod cas;
mod client;
mod crud;
mod etcd_tls;
mod failures;
mod fixture;
mod sqlite_file;
mod txn;
mod watch;

/// Instantiates each `module::test(&mut Fixture)` once per backend.
macro_rules! on_both_backends {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $test() { crate::$module::$test(&mut crate::fixture::Fixture::sqlite()); } )*
        }
        mod etcd {
            $( #[test] fn $test() { crate::$module::$test(&mut crate::fixture::Fixture::etcd()); } )*
        }
    };
}

on_both_backends!(
    crud::create_get_list_update_delete,
    crud::keys_sort_bytewise_and_prefixes_are_exact,
    crud::values_are_stored_byte_exact,
    crud::large_listings_are_complete,
    crud::revisions_are_store_wide_and_failed_writes_take_none,
    crud::clients_share_one_store,
    crud::callable_from_inside_a_tokio_runtime,
    crud::compaction_keeps_data_and_the_revision_counter,
    cas::create_on_an_existing_key_fails_and_changes_nothing,
    cas::update_with_a_stale_revision_conflicts,
    cas::update_or_delete_of_a_missing_key_is_not_found,
    cas::delete_with_a_stale_revision_conflicts,
    cas::recreated_key_does_not_match_the_old_revision,
    cas::racing_increments_lose_nothing,
    cas::retries_give_up_with_the_last_conflict,
    watch::watch_replays_history_from_a_revision,
    watch::watch_sees_live_changes_from_another_client,
    watch::watch_resumes_after_the_last_delivered_revision,
    watch::watch_from_a_compacted_revision_reports_compacted,
    watch::watch_filters_by_prefix,
    watch::watch_from_a_future_revision_waits,
    client::create_stores_calicos_json_and_versions_by_revision,
    client::update_and_delete_honour_resource_version,
    client::apply_creates_then_replaces,
    client::typed_watch_follows_a_kind,
    client::json_objects_with_revisions,
    client::lenient_reads_drop_unknown_fields,
    client::an_undecodable_row_stays_local,
    txn::read_sees_one_snapshot,
    txn::read_lists_past_a_page,
    txn::txn_writes_all_or_nothing,
    txn::read_modify_write_decides_on_what_it_read,
    txn::racing_read_modify_writes_lose_nothing,
    txn::a_guard_key_makes_a_prefix_check_exclusive,
    client::policies_tiers_and_the_builtin_profile,
);

mod unreachable {
    #[test]
    fn sqlite() {
        crate::failures::sqlite_unreachable();
    }
    #[test]
    fn etcd() {
        crate::failures::etcd_unreachable();
    }
}

mod permission_denied {
    #[test]
    fn sqlite() {
        crate::failures::sqlite_permission_denied();
    }
    #[test]
    fn etcd() {
        crate::failures::etcd_permission_denied();
    }
}

mod sqlite_only {
    use crate::sqlite_file as t;
    #[test]
    fn file_is_private_and_its_directory_too() {
        t::file_is_private_and_its_directory_too();
    }
    #[test]
    fn garbage_file_is_reported_as_corrupt() {
        t::garbage_file_is_reported_as_corrupt();
    }
    #[test]
    fn another_programs_database_is_refused() {
        t::another_programs_database_is_refused();
    }
    #[test]
    fn damaged_pages_are_reported_as_corrupt() {
        t::damaged_pages_are_reported_as_corrupt();
    }
    #[test]
    fn change_log_is_trimmed_automatically() {
        t::change_log_is_trimmed_automatically();
    }
    #[test]
    fn concurrent_first_opens_agree() {
        t::concurrent_first_opens_agree();
    }
    #[test]
    fn a_held_write_lock_times_out_cleanly() {
        t::a_held_write_lock_times_out_cleanly();
    }
}

mod etcd_only {
    #[test]
    fn member_restart() {
        crate::failures::etcd_member_restart();
    }
    #[test]
    fn tls_with_client_certificates() {
        crate::etcd_tls::tls_with_client_certificates();
    }
    #[test]
    fn unusable_tls_settings_are_configuration_errors() {
        crate::etcd_tls::unusable_tls_settings_are_configuration_errors();
    }
}
