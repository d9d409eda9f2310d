"""Keep an index following its folders, and answer queries warm from the running watcher."""
