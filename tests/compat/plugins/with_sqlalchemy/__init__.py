"""SQLAlchemy's ORM on an in-memory sqlite database."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    from sqlalchemy import Column, Integer, String, create_engine, func, select
    from sqlalchemy.orm import Session, declarative_base

    Base = declarative_base()

    class Book(Base):
        __tablename__ = "books"
        id = Column(Integer, primary_key=True)
        title = Column(String(50))
        pages = Column(Integer)

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Book(title="A", pages=100), Book(title="B", pages=250), Book(title="C", pages=50)])
        session.commit()
        long_titles = session.scalars(select(Book.title).where(Book.pages > 60).order_by(Book.title)).all()
        total = session.scalar(select(func.sum(Book.pages)))
    return {"long": list(long_titles), "total": total}
