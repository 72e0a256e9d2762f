# The release phase: appends this release to $MARK_DIR/releases (one line per
# run), says so, and fails when the slug holds a file named FAIL (exit 3) or
# waits RELEASE_SLEEP seconds first.
echo "migrating for release $DROVER_RELEASE"
sleep "${RELEASE_SLEEP:-0}"
if [ -e FAIL ]; then
    echo "migration broke: table exists"
    exit 3
fi
echo "$DROVER_RELEASE" >>"$MARK_DIR/releases"
echo "release $DROVER_RELEASE migrated"
