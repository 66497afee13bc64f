"""Event intake: the Segment/RudderStack HTTP Tracking API and offline imports."""
